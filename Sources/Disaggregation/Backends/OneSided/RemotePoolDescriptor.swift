import Foundation
import Kernels

/// What a one-sided engine (nixl, mooncake) tells its peer in the hello: how
/// to reach this process's registered KV pool and where the pool lies in it.
/// The prefill WRITEs straight into the decode's pool, so the decode's
/// descriptor is what its writers address.
struct RemotePoolDescriptor: Equatable {
    /// The engine's own address of this side: NIXL's agent metadata blob,
    /// Mooncake's segment name.
    var endpoint: [UInt8]
    /// The registered pool: its address in that process, its size, and the size of its first buffer
    /// (one layer's K for attention; buffers lie in `PagedKVStorage`'s order from `poolBase` on).
    var poolBase: UInt64
    var poolBytes: UInt64
    var layerBufferBytes: UInt64
    var processID: Int32
    var bootID: String

    /// This process's pool, reached through `endpoint`.
    init(endpoint: [UInt8], storage: PagedKVStorage) {
        self.init(endpoint: endpoint, poolBase: UInt64(UInt(bitPattern: storage.base)),
                  poolBytes: UInt64(storage.totalBytes), layerBufferBytes: UInt64(storage.pageCount * storage.buffers[0].bytesPerPage),
                  processID: getpid(), bootID: SharedMemoryDescriptor.currentBootID)
    }

    init(endpoint: [UInt8], poolBase: UInt64, poolBytes: UInt64, layerBufferBytes: UInt64, processID: Int32, bootID: String) {
        self.endpoint = endpoint
        self.poolBase = poolBase
        self.poolBytes = poolBytes
        self.layerBufferBytes = layerBufferBytes
        self.processID = processID
        self.bootID = bootID
    }

    var encoded: [UInt8] {
        var w = ByteWriter()
        w.blob(endpoint); w.u64(poolBase); w.u64(poolBytes); w.u64(layerBufferBytes)
        w.u32(UInt32(bitPattern: processID)); w.string(bootID)
        return w.data
    }

    init(decoding bytes: [UInt8], engine: String) throws {
        var r = ByteReader(bytes[...])
        endpoint = try r.blob()
        poolBase = try r.u64()
        poolBytes = try r.u64()
        layerBufferBytes = try r.u64()
        processID = Int32(bitPattern: try r.u32())
        bootID = try r.string()
        guard r.remaining == 0, !endpoint.isEmpty else { throw TransferProtocolError("malformed \(engine) descriptor") }
    }

    /// Pages in the decode's pool, which the hello checked is laid out from the same spec as `storage`.
    func pageCount(like storage: PagedKVStorage) -> Int { Int(poolBytes / UInt64(storage.bytesPerPageAllBuffers)) }

    /// A decode pool this prefill can write into: whole pages of every buffer of `storage`'s spec.
    func checkFits(_ storage: PagedKVStorage, engine: String) throws {
        let pages = UInt64(pageCount(like: storage))
        guard pages > 0, poolBytes == pages * UInt64(storage.bytesPerPageAllBuffers),
              layerBufferBytes == pages * UInt64(storage.buffers[0].bytesPerPage) else {
            throw TransferProtocolError("the decode's \(engine) pool description does not fit the KV layout")
        }
    }
}
