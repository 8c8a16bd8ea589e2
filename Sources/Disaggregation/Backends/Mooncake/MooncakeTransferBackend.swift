import Foundation
import Kernels

/// `mooncake`: Mooncake's transfer engine (SGLang's default), from the PyPI
/// wheel `mooncake-transfer-engine-non-cuda` (loaded at run time; PDServe
/// builds and runs without it). As SGLang drives it: P2P handshake (no
/// metadata server), each side registers its whole KV pool once, the prefill
/// WRITEs the merged page runs straight into the decode's pool as one batch
/// and reports a chunk written once Mooncake says the batch completed.
/// RDMA where the host has devices (`--disaggregation-ib-device` filters
/// them), TCP otherwise or under `MC_FORCE_TCP`. Mooncake listens on every
/// interface whatever `--host` says; its segment is advertised at
/// `PDSERVE_HOST_IP`, else a specific `--host`, else the host's first address.
final class MooncakeTransferBackend: TransferBackend, @unchecked Sendable {
    let name = "mooncake"
    let movesNothing = false
    private let storage: PagedKVStorage
    private let engine: MooncakeEngine

    init(context: TransferBackends.Context) throws {
        try Self.refuseGPUOnlyPools(context.settings, environment: ProcessInfo.processInfo.environment)
        storage = context.storage
        let host = context.settings.hostIP ?? (AdvertisedAddress.isWildcard(context.host) ? LocalInterfaces.primaryAddress() : context.host)
        engine = try MooncakeEngine(library: try MooncakeLibrary.find(), host: host, devices: context.ibDevice)
        try engine.register(storage.base, length: storage.totalBytes)
    }

    /// Mooncake's GPU pools (SGLang's custom pools, multi-node NVLink) place
    /// the KV cache in GPU memory; this build keeps it in host memory.
    static func refuseGPUOnlyPools(_ settings: DisaggregationEnvironment, environment: [String: String]) throws {
        if let pool = settings.mooncakeCustomMemPool {
            throw ConfigurationError("SGLANG_MOONCAKE_CUSTOM_MEM_POOL=\(pool): Mooncake's \(pool) pool needs the KV cache in GPU memory (and a CUDA build of Mooncake); this PDServe keeps it in host memory: unset the variable")
        }
        if let force = environment["MC_FORCE_MNNVL"], !["", "0", "false", "no"].contains(force.lowercased()) {
            throw ConfigurationError("MC_FORCE_MNNVL=\(force): multi-node NVLink needs the KV cache in GPU memory and a CUDA build of Mooncake; this PDServe keeps it in host memory: unset the variable")
        }
    }

    var localDescriptor: [UInt8] { RemotePoolDescriptor(endpoint: Array(engine.session.utf8), storage: storage).encoded }

    func makeWriter(peerDescriptor: [UInt8], connection: FrameConnection) throws -> any KVPageWriter {
        let peer = try RemotePoolDescriptor(decoding: peerDescriptor, engine: "Mooncake")
        try peer.checkFits(storage, engine: "Mooncake")
        let engine = self.engine
        let segment = try engine.openSegment(String(decoding: peer.endpoint, as: UTF8.self))
        return RemotePoolWriter(peer: peer, storage: storage, connection: connection,
                                post: { try engine.write(segment: segment, local: $0, remote: $1, lengths: $2) },
                                release: { engine.closeSegment(segment) })
    }

    func makeLander(peerDescriptor: [UInt8], connection: FrameConnection) throws -> any KVPageLander {
        RemotePoolLander(peer: try RemotePoolDescriptor(decoding: peerDescriptor, engine: "Mooncake"))
    }

    func shutdown() {}
}
