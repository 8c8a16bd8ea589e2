import Foundation
import Kernels

/// `nixl`: NVIDIA NIXL through its C API, from the PyPI wheel `nixl-cu12`
/// (loaded at run time; PDServe builds and runs without it). Each side
/// registers its whole KV pool once; the prefill WRITEs the merged page runs
/// straight into the decode's pool (one-sided, as SGLang does) and reports a
/// chunk written only after NIXL reported the write complete — with UCX that
/// means the bytes are in the decode's memory. The plugin comes from
/// `PDSERVE_DISAGGREGATION_NIXL_BACKEND` (UCX by default);
/// `--disaggregation-ib-device` becomes the UCX plugin's `device_list`;
/// without it, a specific `--host` limits UCX to that host's interface.
final class NIXLTransferBackend: TransferBackend, @unchecked Sendable {
    let name = "nixl"
    let movesNothing = false
    private let storage: PagedKVStorage
    private let agent: NIXLAgent

    /// The pinned wheel, without its dependencies (the `nixl` meta package pulls torch and CUDA).
    static let installCommand = "pip install --no-deps nixl-cu12==1.5.1"
    /// The wheel's library folders (cu12 and cu13 builds share the C API).
    static let wheelFolders = [".nixl_cu12.mesonpy.libs", ".nixl_cu13.mesonpy.libs"]

    init(context: TransferBackends.Context) throws {
        storage = context.storage
        let library = try PythonWheelLibrary.find(file: "libnixl_capi.so", folders: Self.wheelFolders, override: "PDSERVE_NIXL_LIB",
                                                  install: Self.installCommand)
        var parameters: [String: String] = [:]
        if context.settings.nixlBackend == "UCX" {
            if let devices = context.ibDevice {
                parameters["device_list"] = Self.deviceList(devices)
            } else if let interface = Self.interfaceOfHost(context: context) {
                // Read by UCX when the agent's worker starts; left alone if the user set it.
                setenv("UCX_NET_DEVICES", interface, 0)
            }
        }
        do {
            agent = try NIXLAgent(library: library, plugin: context.settings.nixlBackend, parameters: parameters)
        } catch let error as ConfigurationError where context.ibDevice != nil {
            throw ConfigurationError("\(error.description); --disaggregation-ib-device \(context.ibDevice!): UCX has no such RDMA device here")
        }
        try agent.register(storage.base, length: storage.totalBytes)
        if context.side == .decode { startProgress() }
    }

    /// `--disaggregation-ib-device` as NIXL's UCX plugin reads `device_list`:
    /// RDMA device names separated by ", " (it turns each into UCX's
    /// "name:1" port form for UCX_NET_DEVICES).
    static func deviceList(_ devices: String) -> String {
        devices.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.joined(separator: ", ")
    }

    /// The interface that holds a specific `--host`, for UCX_NET_DEVICES, so
    /// UCX listens and connects where the instance was told to (on every
    /// interface otherwise); nil for a wildcard host, or when the user set
    /// UCX_NET_DEVICES. (`device_list` cannot carry it: NIXL adds an RDMA
    /// port to every name, which no network interface matches.)
    static func interfaceOfHost(context: TransferBackends.Context,
                                environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        guard environment["UCX_NET_DEVICES"] == nil, !AdvertisedAddress.isWildcard(context.host) else { return nil }
        return LocalInterfaces.name(holding: context.host)
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
        try peer.checkFits(storage, engine: "NIXL")
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
