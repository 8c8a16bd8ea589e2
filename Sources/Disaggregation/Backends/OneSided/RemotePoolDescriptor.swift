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
    /// The registered pool: its address in that process, its size, and the size of one layer's K (or V) buffer.
    var poolBase: UInt64
    var poolBytes: UInt64
    var layerBufferBytes: UInt64
    var processID: Int32
    var bootID: String

    /// This process's pool, reached through `endpoint`.
    init(endpoint: [UInt8], storage: PagedKVStorage) {
        self.init(endpoint: endpoint, poolBase: UInt64(UInt(bitPattern: storage.keys(layer: 0))),
                  poolBytes: UInt64(storage.totalBytes), layerBufferBytes: UInt64(storage.bytesPerLayerBuffer),
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

    /// A decode pool this prefill's layout can write into: whole pages, K and V of every layer.
    func checkFits(_ layout: KVLayout, engine: String) throws {
        guard layerBufferBytes > 0, layerBufferBytes % UInt64(layout.bytesPerPage) == 0,
              poolBytes == layerBufferBytes * 2 * UInt64(layout.layers) else {
            throw TransferProtocolError("the decode's \(engine) pool description does not fit the KV layout")
        }
    }
}
