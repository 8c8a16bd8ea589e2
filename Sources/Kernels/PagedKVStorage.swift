import KernelsC

/// The memory of a paged KV cache laid out from a `KVCacheSpec`: for each
/// layer, one buffer per cache tensor of `[pageCount * pageSize, elements]`,
/// layer by layer and in spec order (a Llama-family model's: per layer one K
/// and one V buffer of kvHeads·headDim). Slot `s` of page `p` is row
/// `p * pageSize + s`. Buffers are contiguous, so a run of consecutive pages
/// is one contiguous copy per buffer (the transfer engines rely on this).
///
/// Which pages belong to whom is the page allocator's business, not this type's.
public final class PagedKVStorage: @unchecked Sendable {
    public let spec: KVCacheSpec
    public let pageCount: Int
    public let pageSize: Int
    /// Every buffer, in pool order, with the bytes one page takes in it.
    public let buffers: [Buffer]
    private let memory: OwnedBuffer

    public struct Buffer: @unchecked Sendable {
        public let base: UnsafeMutableRawPointer
        public let bytesPerPage: Int
    }

    /// `sharedMemoryPath` puts the pool in a shared-memory file another
    /// process can map (the shm transfer backend writes straight into it).
    public init(spec: KVCacheSpec, pageCount: Int, pageSize: Int, sharedMemoryPath: String? = nil) throws {
        self.spec = spec
        self.pageCount = pageCount
        self.pageSize = pageSize
        let bytes = pageCount * pageSize * spec.bytesPerToken
        let memory = try sharedMemoryPath.map { try OwnedBuffer(sharedFile: $0, byteCount: bytes) } ?? OwnedBuffer(byteCount: bytes)
        self.memory = memory
        buffers = zip(spec.bufferOffsets(pageCount: pageCount, pageSize: pageSize), spec.pageBytesPerBuffer(pageSize: pageSize))
            .map { Buffer(base: memory.pointer + $0, bytesPerPage: $1) }
    }

    /// A pool of K and V of `width` elements per layer (attention's usual cache).
    public convenience init(layers: Int, pageCount: Int, pageSize: Int, width: Int, dtype: DType, sharedMemoryPath: String? = nil) throws {
        try self.init(spec: .keyValue(layers: layers, width: width, dtype: dtype), pageCount: pageCount, pageSize: pageSize,
                      sharedMemoryPath: sharedMemoryPath)
    }

    public var layers: Int { spec.layers }

    /// The shared-memory file holding the pool, if it is shared.
    public var sharedMemoryPath: String? { memory.sharedPath }
    /// Where the pool starts: what one-sided engines register.
    public var base: UnsafeMutableRawPointer { memory.pointer }
    public var totalBytes: Int { memory.byteCount }
    /// Bytes one page takes over every buffer (what moving one page moves).
    public var bytesPerPageAllBuffers: Int { pageSize * spec.bytesPerToken }

    /// Tensor `tensor` (an index into `spec.tensors`) of layer `layer`.
    public func buffer(layer: Int, tensor: Int) -> UnsafeMutableRawPointer { buffers[layer * spec.tensors.count + tensor].base }

    // MARK: attention's K and V (a `.keyValue` spec)

    /// Elements per token row of K (and V): kvHeads * headDim.
    public var width: Int {
        guard let width = spec.keyValueWidth else { preconditionFailure("a \(spec) pool has no single K/V width") }
        return width
    }
    public var dtype: DType { spec.tensors[0].dtype }
    /// Bytes of one layer's K (or V) buffer.
    public var bytesPerLayerBuffer: Int { pageCount * bytesPerPage }
    /// Bytes one page occupies in one layer's K (or V) buffer.
    public var bytesPerPage: Int { pageSize * width * dtype.size }

    public func keys(layer: Int) -> UnsafeMutableRawPointer { precondition(spec.keyValueWidth != nil); return buffer(layer: layer, tensor: 0) }
    public func values(layer: Int) -> UnsafeMutableRawPointer { precondition(spec.keyValueWidth != nil); return buffer(layer: layer, tensor: 1) }

    /// Writes fp32 K and V rows for `slots.count` tokens into their slots.
    public func store(layer: Int, keys k: [Float], values v: [Float], slots: [Int32]) {
        let width = self.width
        precondition(k.count == slots.count * width && v.count == k.count, "kv store shape mismatch")
        precondition(slots.allSatisfy { $0 >= 0 && Int($0) < pageCount * pageSize }, "kv slot out of range")
        slots.withUnsafeBufferPointer { sp in
            k.withUnsafeBufferPointer { pds_kv_store($0.baseAddress!, Int32(slots.count), Int32(width), sp.baseAddress!, keys(layer: layer), dtype.kernelTag) }
            v.withUnsafeBufferPointer { pds_kv_store($0.baseAddress!, Int32(slots.count), Int32(width), sp.baseAddress!, values(layer: layer), dtype.kernelTag) }
        }
    }
}
