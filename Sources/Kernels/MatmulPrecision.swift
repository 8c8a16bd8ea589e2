import KernelsC

/// How linear layers with many activation rows multiply (`--matmul-precision`).
public enum MatmulPrecision: String, Sendable, CaseIterable {
    /// fp32 activations and fp32 sums over exactly widened weights: results
    /// match transformers' fp32 up to summation order. The default.
    case fp32
    /// Linear layers with at least `bf16MinimumRows` activation rows (prefill
    /// chunks, large batches) round their activations to bf16 and sum the
    /// products in fp32 with AVX512_BF16's `vdpbf16ps`, which does twice the
    /// multiply-adds per instruction. Logits move by about as much as
    /// transformers' own `dtype=torch.bfloat16` moves them. Smaller layers
    /// (decode GEMV, bound by memory, not arithmetic) stay fp32-exact.
    case bf16

    /// Fewest activation rows for which a linear layer runs in bf16. Below
    /// this a layer streams its weights from DRAM for few rows: memory bound,
    /// so bf16 would cost accuracy and buy nothing. 64 rows keep ordinary
    /// decode batches exact while every prefill chunk of a long prompt speeds up.
    public static let bf16MinimumRows = 64

    /// Whether the bf16 kernel runs on this machine (AVX-512 with AVX512_BF16,
    /// and `PDSERVE_PORTABLE_KERNELS` not set).
    public static var bf16Available: Bool { pds_bf16_matmul_enabled() != 0 }

    /// What a request for `self` gives on this machine: bf16 falls back to
    /// fp32 where the CPU lacks AVX512_BF16.
    public var effective: MatmulPrecision { self == .bf16 && Self.bf16Available ? .bf16 : .fp32 }
}
