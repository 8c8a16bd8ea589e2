/// Element types of weights and KV cache buffers.
public enum DType: String, Sendable, CaseIterable {
    case f32 = "float32"
    case bf16 = "bfloat16"

    /// Bytes per element.
    public var size: Int { self == .f32 ? 4 : 2 }

    /// The tag the C kernels use.
    var kernelTag: Int32 { self == .f32 ? 0 : 1 }

    /// Parses the names users pass to `--kv-cache-dtype` and that configs carry.
    public init?(name: String) {
        switch name.lowercased() {
        case "float32", "fp32", "f32": self = .f32
        case "bfloat16", "bf16": self = .bf16
        default: return nil
        }
    }
}
