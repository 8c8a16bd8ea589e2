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

    var localDescriptor: [UInt8] { RemotePoolDescriptor(endpoint: agent.metadata, storage: storage).encoded }

    func makeWriter(peerDescriptor: [UInt8], connection: FrameConnection) throws -> any KVPageWriter {
        let peer = try RemotePoolDescriptor(decoding: peerDescriptor, engine: "NIXL")
        try peer.checkFits(layout, engine: "NIXL")
        let agent = self.agent
        let remote = try agent.loadRemote(peer.endpoint)
        return RemotePoolWriter(peer: peer, storage: storage, connection: connection,
                                post: { try agent.write(to: remote, local: $0, remoteAddresses: $1, lengths: $2) },
                                release: { agent.forgetRemote(remote) })
    }

    func makeLander(peerDescriptor: [UInt8], connection: FrameConnection) throws -> any KVPageLander {
        RemotePoolLander(peer: try RemotePoolDescriptor(decoding: peerDescriptor, engine: "NIXL"))
    }

    func shutdown() { progressState.withLock { stopped = true } }
}
