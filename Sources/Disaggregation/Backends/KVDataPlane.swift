import Kernels

/// How page bytes move for each backend — the part of a transfer that
/// `pdserve bench transfer` measures. Pages are gathered and scattered as
/// merged runs: one contiguous range per pool buffer (every cache tensor of
/// every layer, in the pool's order: K then V per layer for attention) per run.
public enum KVDataPlane {
    /// Raw bytes of one kvPages frame for `pages` of `storage`.
    public static func byteCount(pages: Int, storage: PagedKVStorage) -> UInt64 {
        UInt64(pages * storage.bytesPerPageAllBuffers)
    }

    /// The pool memory of `pages`, in wire order: buffer by buffer, each as merged runs of consecutive pages.
    static func ranges(of pages: [Int32], in storage: PagedKVStorage) -> [UnsafeMutableRawBufferPointer] {
        let runs = PageRun.merge(sources: pages, destinations: pages)
        var ranges: [UnsafeMutableRawBufferPointer] = []
        ranges.reserveCapacity(storage.buffers.count * runs.count)
        for buffer in storage.buffers {
            for run in runs {
                ranges.append(UnsafeMutableRawBufferPointer(start: buffer.base + Int(run.source) * buffer.bytesPerPage,
                                                            count: run.count * buffer.bytesPerPage))
            }
        }
        return ranges
    }

    /// tcp: one kvPages frame whose bytes are gathered straight from the pool (`writev`, no staging copy).
    public static func send(room: UInt64, firstIndex: Int, source: [Int32], from storage: PagedKVStorage, over connection: FrameConnection) throws {
        let parts = ranges(of: source, in: storage).map { UnsafeRawBufferPointer($0) }
        let frame = TransferMessage.KVPages(room: room, firstIndex: UInt32(firstIndex), pageCount: UInt32(source.count),
                                            byteCount: byteCount(pages: source.count, storage: storage))
        try connection.send(.kvPages(frame), raw: parts)
    }

    /// tcp: the bytes of a kvPages frame read straight into `destination` pages of the pool.
    public static func receive(destination: [Int32], into storage: PagedKVStorage, from connection: FrameConnection) throws {
        try connection.read(into: ranges(of: destination, in: storage))
    }

    /// shm: copies pages from the prefill pool into the decode pool mapped from shared memory.
    public static func copy(source: [Int32], destination: [Int32], from storage: PagedKVStorage, to pool: SharedPoolMapping) throws {
        let runs = PageRun.merge(sources: source, destinations: destination)
        try PageRun.checkDestinations(runs, within: pool.pageCount, pool: "the shared pool")
        for (buffer, target) in zip(storage.buffers, pool.buffers) {
            let pageBytes = buffer.bytesPerPage
            for run in runs {
                (target + Int(run.destination) * pageBytes).copyMemory(from: buffer.base + Int(run.source) * pageBytes, byteCount: run.count * pageBytes)
            }
        }
    }
}
