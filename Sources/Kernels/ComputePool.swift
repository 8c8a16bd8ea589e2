import KernelsC

/// The threads that run the parallel kernels (linear layers, attention).
///
/// One pool per engine; the engine thread is one of its workers. OpenBLAS's
/// own thread count is set to match so the two never oversubscribe the cores.
public final class ComputePool: @unchecked Sendable {
    let pool: OpaquePointer
    public let threads: Int

    public init(threads: Int) {
        self.threads = max(1, threads)
        pool = pds_pool_create(Int32(self.threads))
        pds_blas_set_threads(Int32(self.threads))
    }

    deinit { pds_pool_destroy(pool) }

    /// `y[rows, weight.rows] = x[rows, weight.cols] · weightᵀ (+ bias)`.
    /// With `precision` `.bf16`, at least `MatmulPrecision.bf16MinimumRows`
    /// rows and a panel-packed weight on a CPU with AVX512_BF16, x is rounded
    /// to bf16; otherwise the product is fp32-exact.
    public func linear(_ x: [Float], rows: Int, weight: WeightMatrix, bias: [Float]?, precision: MatmulPrecision = .fp32,
                       into y: inout [Float]) {
        precondition(x.count >= rows * weight.cols, "linear input has \(x.count) values, needs \(rows)×\(weight.cols)")
        precondition(y.count >= rows * weight.rows, "linear output too small")
        precondition(bias == nil || bias!.count == weight.rows, "bias size mismatch")
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                func run(_ b: UnsafePointer<Float>?) {
                    if let panels = weight.panels?.pointer.assumingMemoryBound(to: UInt16.self) {
                        if precision == .bf16, rows >= MatmulPrecision.bf16MinimumRows, pds_bf16_matmul_enabled() != 0 {
                            pds_linear_panels_bf16(pool, xp.baseAddress!, Int32(rows), Int32(weight.cols), panels,
                                                   Int32(weight.rows), b, yp.baseAddress!)
                            return
                        }
                        if weight.panelsAreExact, pds_avx512_enabled() != 0 {
                            pds_linear_panels(pool, xp.baseAddress!, Int32(rows), Int32(weight.cols), panels,
                                              Int32(weight.rows), b, yp.baseAddress!)
                            return
                        }
                    }
                    pds_linear(pool, xp.baseAddress!, Int32(rows), Int32(weight.cols), weight.base,
                               weight.dtype.kernelTag, Int32(weight.rows), b, yp.baseAddress!)
                }
                if let bias { bias.withUnsafeBufferPointer { run($0.baseAddress!) } } else { run(nil) }
            }
        }
    }

    /// Causal attention of a batch of query spans over the K and V of one layer of a `.keyValue` cache.
    public func attention(
        q: [Float], spans: [AttentionSpan], heads: Int, kvHeads: Int, headDim: Int,
        cache: PagedKVStorage, layer: Int, window: Int, scale: Float, into out: inout [Float]
    ) {
        precondition(kvHeads * headDim == cache.width, "attention head layout mismatch")
        attention(q: q, spans: spans, heads: heads, kvHeads: kvHeads,
                  keys: AttentionOperand(base: cache.keys(layer: layer), rowStride: cache.width, headDim: headDim, dtype: cache.dtype),
                  values: AttentionOperand(base: cache.values(layer: layer), rowStride: cache.width, headDim: headDim, dtype: cache.dtype),
                  pageSize: cache.pageSize, window: window, scale: scale, into: &out)
    }

    /// Causal attention with keys and values read as two operands whose head
    /// dims, row strides and dtypes may differ (MLA: K a latent row plus its
    /// rotary part, V the latent alone). q: `[tokens, heads·keys.headDim]`,
    /// out: `[tokens, heads·values.headDim]`.
    public func attention(
        q: [Float], spans: [AttentionSpan], heads: Int, kvHeads: Int, keys: AttentionOperand, values: AttentionOperand,
        pageSize: Int, window: Int, scale: Float, into out: inout [Float]
    ) {
        let tokens = spans.reduce(0) { $0 + $1.tokenCount }
        precondition(q.count == tokens * heads * keys.headDim && out.count >= tokens * heads * values.headDim, "attention shape mismatch")
        precondition(heads % kvHeads == 0 && kvHeads * keys.headDim <= keys.rowStride && kvHeads * values.headDim <= values.rowStride,
                     "attention head layout mismatch")
        // The page tables must stay pinned while C reads them.
        var pinned: [UnsafeMutableBufferPointer<Int32>] = []
        defer { pinned.forEach { $0.deallocate() } }
        var seqs = [pds_attn_seq]()
        seqs.reserveCapacity(spans.count)
        for span in spans {
            precondition(span.pageTable.count * pageSize >= span.startPosition + span.tokenCount, "page table too short")
            let table = UnsafeMutableBufferPointer<Int32>.allocate(capacity: max(span.pageTable.count, 1))
            _ = table.initialize(from: span.pageTable)
            pinned.append(table)
            seqs.append(pds_attn_seq(token_offset: Int32(span.tokenOffset), token_count: Int32(span.tokenCount),
                                     start_position: Int32(span.startPosition), page_table: table.baseAddress!))
        }
        q.withUnsafeBufferPointer { qp in
            out.withUnsafeMutableBufferPointer { op in
                pds_attention_kv(pool, seqs, Int32(seqs.count), Int32(tokens), qp.baseAddress!, Int32(heads), Int32(kvHeads),
                                 keys.operand, values.operand, Int32(pageSize), Int32(window), scale, op.baseAddress!)
            }
        }
    }
}

/// One cache tensor as attention reads it: element (slot, kv head h, d) is
/// `base[slot·rowStride + h·headDim + d]` of `dtype`.
public struct AttentionOperand {
    public var base: UnsafeRawPointer
    public var rowStride: Int
    public var headDim: Int
    public var dtype: DType

    public init(base: UnsafeRawPointer, rowStride: Int, headDim: Int, dtype: DType) {
        self.base = base
        self.rowStride = rowStride
        self.headDim = headDim
        self.dtype = dtype
    }

    var operand: pds_kv_operand { pds_kv_operand(base: base, stride: Int32(rowStride), head_dim: Int32(headDim), type: dtype.kernelTag) }
}

/// One sequence's run of query tokens inside a batch.
public struct AttentionSpan: Sendable {
    /// Index of its first token among the batch's tokens.
    public var tokenOffset: Int
    public var tokenCount: Int
    /// Absolute position of its first token.
    public var startPosition: Int
    /// KV pages holding positions 0..<startPosition+tokenCount.
    public var pageTable: [Int32]

    public init(tokenOffset: Int, tokenCount: Int, startPosition: Int, pageTable: [Int32]) {
        self.tokenOffset = tokenOffset
        self.tokenCount = tokenCount
        self.startPosition = startPosition
        self.pageTable = pageTable
    }
}
