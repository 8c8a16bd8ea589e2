import Engine
import Kernels
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

/// Turns an engine into the prefill or decode half of a PD pair: makes the
/// transfer backend, installs the side-car as the engine's hooks and
/// returns the services to run beside the HTTP server.
public enum DisaggregationSetup {
    public enum Mode: String, Sendable {
        case prefill, decode
    }

    /// The running side-car and what /get_server_info should say about it.
    public struct Attached: Sendable {
        public var services: [any Service]
        public var info: [String: String]
        /// Points the side-car's wake-ups at the engine thread.
        public let connect: @Sendable (Engine) -> Void
    }

    /// The KV pool shape both halves must share.
    public static func layout(of core: EngineCore) -> KVLayout {
        let c = core.model.config
        let model = "\(c.architecture)/\(c.layerCount)x\(c.hiddenSize)/\(c.headCount):\(c.kvHeadCount)x\(c.headDim)/v\(c.vocabSize)"
        return KVLayout(pageSize: UInt32(core.storage.pageSize), spec: core.storage.spec, model: model)
    }

    /// Engine options a side needs before the engine exists (the shm backend's decode pool lives in shared memory).
    public static func prepare(_ options: inout EngineOptions, mode: Mode?, backend: String) {
        if mode == .decode && TransferBackends.needsSharedPool(backend) { options.kvSharedMemoryPath = SharedPoolFile.newPath() }
    }

    public static func attach(mode: Mode, core: EngineCore, backend name: String, settings: DisaggregationEnvironment,
                              host: String, bootstrapPort: Int, ibDevice: String? = nil, authKey: ChannelKey? = nil,
                              logger: Logger) throws -> Attached {
        let layout = layout(of: core)
        if authKey == nil {
            logger.info("PD channels are not authenticated: any process that reaches this instance's ports can take part (set --disaggregation-auth-key)")
        }
        switch mode {
        case .prefill:
            // Fail start-up, with the flag's name, before anything says it is serving; and hold the
            // port until the transfer listener (on any free port) is bound, so that it cannot take it.
            let reservation: FrameListener
            do {
                reservation = try FrameListener(host: host, port: bootstrapPort)
            } catch {
                throw ConfigurationError("--disaggregation-bootstrap-port \(bootstrapPort): \(error)")
            }
            defer { reservation.close() }
            let backend = try TransferBackends.make(name, context: .init(side: .prefill, storage: core.storage, layout: layout,
                                                                        settings: settings, ibDevice: ibDevice, host: host))
            let sideCar = try PrefillSideCar(storage: core.storage, layout: layout, backend: backend, settings: settings, host: host,
                                             authKey: authKey, profiler: core.profiler, logger: logger)
            core.hooks = sideCar
            let advertised = AdvertisedAddress(bindHost: host, override: settings.hostIP)
            let registry = BootstrapRegistry()
            let rankIP: String
            switch advertised {
            case .fixed(let address): rankIP = address
            case .perLookup: rankIP = ""
            }
            registry.register(PrefillRoute(rankIP: rankIP, rankPort: sideCar.transferPort, layout: layout, backend: backend.name))
            let bootstrap = BootstrapServer(registry: registry, host: host, port: bootstrapPort, logger: logger, key: authKey,
                                            drained: { [weak sideCar] in sideCar?.isDrained(session: $0) })
            let shown = rankIP.isEmpty ? "the address each decode reaches it by" : rankIP
            logger.info("prefill side-car: KV transfer on port \(sideCar.transferPort) (\(backend.name)), advertised as \(shown); bootstrap server on \(host):\(bootstrapPort)")
            return Attached(
                services: [bootstrap.makeApplication(), SideCarStopper(stop: sideCar.stop)],
                info: ["disaggregation_bootstrap_port": String(bootstrapPort), "disaggregation_transfer_port": String(sideCar.transferPort),
                       "disaggregation_transfer_backend": backend.name],
                connect: { engine in sideCar.wake = { engine.wake() } })
        case .decode:
            let backend = try TransferBackends.make(name, context: .init(side: .decode, storage: core.storage, layout: layout,
                                                                        settings: settings, ibDevice: ibDevice, host: host))
            let sideCar = DecodeSideCar(storage: core.storage, layout: layout, backend: backend, settings: settings,
                                        vocabSize: core.model.config.vocabSize, authKey: authKey, profiler: core.profiler, logger: logger)
            core.hooks = sideCar
            logger.info("decode side-car: receiving KV over \(backend.name)\(core.storage.sharedMemoryPath.map { " into \($0)" } ?? "")")
            return Attached(services: [SideCarStopper(stop: sideCar.stop)], info: ["disaggregation_transfer_backend": backend.name],
                            connect: { engine in sideCar.wake = { engine.wake() } })
        }
    }
}

/// Stops the side-car's threads (and removes what its backend holds outside
/// the process) when the instance shuts down.
struct SideCarStopper: Service {
    let stop: @Sendable () -> Void

    func run() async throws {
        try? await gracefulShutdown()
        stop()
    }
}
