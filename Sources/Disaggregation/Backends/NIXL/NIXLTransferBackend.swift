import Foundation
import Kernels

/// `nixl`: NVIDIA NIXL through its C API, from the PyPI wheel `nixl-cu12`
/// (loaded at run time; PDServe builds and runs without it). Each side
/// registers its whole KV pool once; the prefill WRITEs the merged page runs
/// straight into the decode's pool (one-sided, as SGLang does) and reports a
/// chunk written only after NIXL reported the write complete — with UCX that
/// means the bytes are in the decode's memory. The plugin comes from
/// `PDSERVE_DISAGGREGATION_NIXL_BACKEND` (UCX by default);
/// `--disaggregation-ib-device` becomes UCX's `ucx_devices`.
final class NIXLTransferBackend: TransferBackend, @unchecked Sendable {
    let name = "nixl"
    let movesNothing = false
    private let storage: PagedKVStorage
    private let layout: KVLayout
    private let agent: NIXLAgent

    /// The pinned wheel, without its dependencies (the `nixl` meta package pulls torch and CUDA).
    static let installCommand = "pip install --no-deps nixl-cu12==1.5.1"
    /// The wheel's library folders (cu12 and cu13 builds share the C API).
    static let wheelFolders = [".nixl_cu12.mesonpy.libs", ".nixl_cu13.mesonpy.libs"]

    init(context: TransferBackends.Context) throws {
        storage = context.storage
        layout = context.layout
        let library = try PythonWheelLibrary.find(file: "libnixl_capi.so", folders: Self.wheelFolders, override: "PDSERVE_NIXL_LIB",
                                                  install: Self.installCommand)
        var parameters: [String: String] = [:]
        if let devices = context.ibDevice, context.settings.nixlBackend == "UCX" { parameters["ucx_devices"] = devices }
        agent = try NIXLAgent(library: library, plugin: context.settings.nixlBackend, parameters: parameters)
        try agent.register(storage.keys(layer: 0), length: storage.totalBytes)
        if context.side == .decode { startProgress() }
    }

    private let progressState = NSLock()
    private var stopped = false

    /// NIXL's own progress thread busy-spins a core; the decode, the target of
    /// every write, polls its agent every 200 µs instead (prefill writers drive
    /// their own progress while they wait).
    private func startProgress() {
        let thread = Thread { [self] in
            while !progressState.withLock({ stopped }) {
                agent.progress()
                usleep(200)
            }
        }
        thread.name = "pdserve-nixl-progress"
        thread.start()
    }

    var localDescriptor: [UInt8] {
        NIXLDescriptor(metadata: agent.metadata, poolBase: UInt64(UInt(bitPattern: storage.keys(layer: 0))),
                       poolBytes: UInt64(storage.totalBytes), layerBufferBytes: UInt64(storage.bytesPerLayerBuffer),
                       processID: getpid(), bootID: SharedMemoryDescriptor.currentBootID).encoded
    }

    func makeWriter(peerDescriptor: [UInt8], connection: FrameConnection) throws -> any KVPageWriter {
        let peer = try NIXLDescriptor(decoding: peerDescriptor)
        guard peer.layerBufferBytes > 0, peer.layerBufferBytes % UInt64(layout.bytesPerPage) == 0,
              peer.poolBytes == peer.layerBufferBytes * 2 * UInt64(layout.layers) else {
            throw TransferProtocolError("the decode's NIXL pool description does not fit the KV layout")
        }
        return Writer(agent: agent, remote: try agent.loadRemote(peer.metadata), peer: peer, storage: storage, connection: connection)
    }

    func makeLander(peerDescriptor: [UInt8], connection: FrameConnection) throws -> any KVPageLander {
        Lander(peer: try NIXLDescriptor(decoding: peerDescriptor))
    }

    func shutdown() { progressState.withLock { stopped = true } }

    /// Prefill side: one decode's pool, reached through its NIXL agent.
    final class Writer: KVPageWriter, @unchecked Sendable {
        let agent: NIXLAgent
        let remote: String
        let peer: NIXLDescriptor
        let storage: PagedKVStorage
        let connection: FrameConnection

        init(agent: NIXLAgent, remote: String, peer: NIXLDescriptor, storage: PagedKVStorage, connection: FrameConnection) {
            self.agent = agent
            self.remote = remote
            self.peer = peer
            self.storage = storage
            self.connection = connection
        }

        deinit { agent.forgetRemote(remote) }

        func write(room: UInt64, firstIndex: Int, source: [Int32], destination: [Int32]) throws {
            let pageBytes = UInt64(storage.bytesPerPage)
            let remotePages = peer.layerBufferBytes / pageBytes
            let runs = PageRun.merge(sources: source, destinations: destination)
            try PageRun.checkDestinations(runs, within: Int(remotePages), pool: "the decode's pool")
            var local: [UInt64] = [], target: [UInt64] = [], lengths: [UInt64] = []
            for layer in 0..<storage.layers {
                for (kind, base) in [storage.keys(layer: layer), storage.values(layer: layer)].enumerated() {
                    let remoteBase = peer.poolBase + UInt64(2 * layer + kind) * peer.layerBufferBytes
                    for run in runs {
                        local.append(UInt64(UInt(bitPattern: base)) + UInt64(run.source) * pageBytes)
                        target.append(remoteBase + UInt64(run.destination) * pageBytes)
                        lengths.append(UInt64(run.count) * pageBytes)
                    }
                }
            }
            try agent.write(to: remote, local: local, remoteAddresses: target, lengths: lengths)
            try connection.send(.kvWritten(room: room, firstIndex: UInt32(firstIndex), pageCount: UInt32(source.count)))
        }
    }

    /// Decode side: the prefill writes into this pool itself.
    struct Lander: KVPageLander {
        let peer: NIXLDescriptor
        var writer: PageWriterLocation { .remote }
        /// On this host a dead prefill provably writes nothing; elsewhere only its confirmation counts.
        func peerMayStillWrite() -> Bool {
            peer.bootID != SharedMemoryDescriptor.currentBootID || ProcessLiveness.isRunning(peer.processID)
        }
    }
}

/// What each side of a NIXL pair tells the other in its hello.
struct NIXLDescriptor: Equatable {
    /// The agent's metadata blob (`nixl_capi_get_local_md`).
    var metadata: [UInt8]
    /// The registered pool: its address in that process, its size, and the size of one layer's K (or V) buffer.
    var poolBase: UInt64
    var poolBytes: UInt64
    var layerBufferBytes: UInt64
    var processID: Int32
    var bootID: String

    var encoded: [UInt8] {
        var w = ByteWriter()
        w.blob(metadata); w.u64(poolBase); w.u64(poolBytes); w.u64(layerBufferBytes)
        w.u32(UInt32(bitPattern: processID)); w.string(bootID)
        return w.data
    }

    init(metadata: [UInt8], poolBase: UInt64, poolBytes: UInt64, layerBufferBytes: UInt64, processID: Int32, bootID: String) {
        self.metadata = metadata
        self.poolBase = poolBase
        self.poolBytes = poolBytes
        self.layerBufferBytes = layerBufferBytes
        self.processID = processID
        self.bootID = bootID
    }

    init(decoding bytes: [UInt8]) throws {
        var r = ByteReader(bytes[...])
        metadata = try r.blob()
        poolBase = try r.u64()
        poolBytes = try r.u64()
        layerBufferBytes = try r.u64()
        processID = Int32(bitPattern: try r.u32())
        bootID = try r.string()
        guard r.remaining == 0, !metadata.isEmpty else { throw TransferProtocolError("malformed NIXL descriptor") }
    }
}
