import KernelsC

/// The memory of a paged KV cache: per layer one K and one V buffer of
/// `[pageCount * pageSize, kvHeads * headDim]` elements. Slot `s` of page `p`
/// is row `p * pageSize + s`. Per-layer contiguous buffers make a run of
/// consecutive pages one contiguous copy (the transfer engines rely on this).
///
/// Which pages belong to whom is the page allocator's business, not this type's.
public final class PagedKVStorage: @unchecked Sendable {
    public let layers: Int
    public let pageCount: Int
    public let pageSize: Int
    /// Elements per token row: kvHeads * headDim.
    public let width: Int
    public let dtype: DType
    private let memory: OwnedBuffer

    /// `sharedMemoryPath` puts the pool in a shared-memory file another
    /// process can map (the shm transfer backend writes straight into it).
    public init(layers: Int, pageCount: Int, pageSize: Int, width: Int, dtype: DType, sharedMemoryPath: String? = nil) throws {
        self.layers = layers
        self.pageCount = pageCount
        self.pageSize = pageSize
        self.width = width
        self.dtype = dtype
        let bytes = 2 * layers * pageCount * pageSize * width * dtype.size
        memory = try sharedMemoryPath.map { try OwnedBuffer(sharedFile: $0, byteCount: bytes) } ?? OwnedBuffer(byteCount: bytes)
    }

    /// The shared-memory file holding the pool, if it is shared.
    public var sharedMemoryPath: String? { memory.sharedPath }

    /// Bytes of one layer's K (or V) buffer.
    public var bytesPerLayerBuffer: Int { pageCount * pageSize * width * dtype.size }
    /// Bytes one page occupies in one layer's K (or V) buffer.
    public var bytesPerPage: Int { pageSize * width * dtype.size }
    public var totalBytes: Int { memory.byteCount }

    public func keys(layer: Int) -> UnsafeMutableRawPointer { memory.pointer + (2 * layer) * bytesPerLayerBuffer }
    public func values(layer: Int) -> UnsafeMutableRawPointer { memory.pointer + (2 * layer + 1) * bytesPerLayerBuffer }

    /// Writes fp32 K and V rows for `slots.count` tokens into their slots.
    public func store(layer: Int, keys k: [Float], values v: [Float], slots: [Int32]) {
        precondition(k.count == slots.count * width && v.count == k.count, "kv store shape mismatch")
        precondition(slots.allSatisfy { $0 >= 0 && Int($0) < pageCount * pageSize }, "kv slot out of range")
        slots.withUnsafeBufferPointer { sp in
            k.withUnsafeBufferPointer { pds_kv_store($0.baseAddress!, Int32(slots.count), Int32(width), sp.baseAddress!, keys(layer: layer), dtype.kernelTag) }
            v.withUnsafeBufferPointer { pds_kv_store($0.baseAddress!, Int32(slots.count), Int32(width), sp.baseAddress!, values(layer: layer), dtype.kernelTag) }
        }
    }
}
