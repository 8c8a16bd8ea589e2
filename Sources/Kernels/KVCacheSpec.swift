/// What a model caches for each token in every layer: a list of named
/// tensors, each a number of elements of one dtype. A Llama-family model
/// caches `k` and `v` of kvHeads·headDim elements each; DeepSeek's MLA
/// caches a latent and a rotary key of unequal widths. The engine sizes
/// the paged pool from it, and the two halves of a PD pair compare it.
public struct KVCacheSpec: Sendable, Equatable, CustomStringConvertible {
    public struct Tensor: Sendable, Equatable {
        public var name: String
        public var elementsPerToken: Int
        public var dtype: DType

        public init(name: String, elementsPerToken: Int, dtype: DType) {
            self.name = name
            self.elementsPerToken = elementsPerToken
            self.dtype = dtype
        }

        public var bytesPerToken: Int { elementsPerToken * dtype.size }
    }

    /// The most tensors a spec may list per layer (what a peer may describe).
    public static let maxTensors = 16

    public var layers: Int
    /// The same list in every layer.
    public var tensors: [Tensor]

    public init(layers: Int, tensors: [Tensor]) {
        self.layers = layers
        self.tensors = tensors
    }

    /// Attention's usual cache: K then V, `width` elements each.
    public static func keyValue(layers: Int, width: Int, dtype: DType) -> KVCacheSpec {
        KVCacheSpec(layers: layers, tensors: [Tensor(name: "k", elementsPerToken: width, dtype: dtype),
                                              Tensor(name: "v", elementsPerToken: width, dtype: dtype)])
    }

    /// Bytes one token takes in the cache, over every layer and tensor.
    public var bytesPerToken: Int { layers * tensors.reduce(0) { $0 + $1.bytesPerToken } }

    /// The width of K and V when the spec is exactly that: K then V of one width and dtype.
    public var keyValueWidth: Int? {
        guard tensors.count == 2, tensors[0].name == "k", tensors[1].name == "v",
              tensors[0].elementsPerToken == tensors[1].elementsPerToken, tensors[0].dtype == tensors[1].dtype else { return nil }
        return tensors[0].elementsPerToken
    }

    /// Bytes one page takes in each of a paged pool's buffers, in pool order:
    /// layer by layer, each layer's tensors in spec order.
    public func pageBytesPerBuffer(pageSize: Int) -> [Int] {
        let perLayer = tensors.map { pageSize * $0.bytesPerToken }
        return (0..<layers).flatMap { _ in perLayer }
    }

    /// Where each buffer starts in a pool of `pageCount` pages (every buffer holds all pages of its tensor).
    public func bufferOffsets(pageCount: Int, pageSize: Int) -> [Int] {
        var offset = 0
        return pageBytesPerBuffer(pageSize: pageSize).map { pageBytes in
            defer { offset += pageCount * pageBytes }
            return offset
        }
    }

    /// "3 layers × [k 36 float32, v 36 float32]".
    public var description: String {
        "\(layers) layers × [" + tensors.map { "\($0.name) \($0.elementsPerToken) \($0.dtype.rawValue)" }.joined(separator: ", ") + "]"
    }
}
