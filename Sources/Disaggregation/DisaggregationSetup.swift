import Engine
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

/// Turns an engine into the prefill or decode half of a PD pair: installs
/// the side-car as the engine's hooks and returns the services to run
/// beside the HTTP server (the prefill's bootstrap server).
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
        let model = "\(c.architecture.rawValue)/\(c.layerCount)x\(c.hiddenSize)/\(c.headCount):\(c.kvHeadCount)x\(c.headDim)/v\(c.vocabSize)"
        return KVLayout(layers: UInt32(core.storage.layers), pageSize: UInt32(core.storage.pageSize),
                        width: UInt32(core.storage.width), dtype: core.storage.dtype == .f32 ? 0 : 1, model: model)
    }

    /// Where the decode side keeps its pool for the shm backend.
    public static func sharedPoolPath() -> String { "/dev/shm/pdserve-kv-\(getpid())" }

    public static func attach(mode: Mode, core: EngineCore, backend: TransferBackendKind, settings: DisaggregationEnvironment,
                              host: String, bootstrapPort: Int, logger: Logger) throws -> Attached {
        let layout = layout(of: core)
        switch mode {
        case .prefill:
            let sideCar = try PrefillSideCar(storage: core.storage, layout: layout, backend: backend, settings: settings, host: host, logger: logger)
            core.hooks = sideCar
            let registry = BootstrapRegistry()
            // Decode instances connect to the address routers gave them for this prefill.
            let advertised = host == "0.0.0.0" ? "127.0.0.1" : host
            registry.register(PrefillRoute(rankIP: advertised, rankPort: sideCar.transferPort, layout: layout, backend: backend.rawValue))
            let bootstrap = BootstrapServer(registry: registry, host: host, port: bootstrapPort, logger: logger)
            logger.info("prefill side-car: KV transfer on \(advertised):\(sideCar.transferPort) (\(backend.rawValue)), bootstrap server on \(host):\(bootstrapPort)")
            return Attached(
                services: [bootstrap.makeApplication(), SideCarStopper(stop: sideCar.stop)],
                info: ["disaggregation_bootstrap_port": String(bootstrapPort), "disaggregation_transfer_port": String(sideCar.transferPort),
                       "disaggregation_transfer_backend": backend.rawValue],
                connect: { engine in sideCar.wake = { engine.wake() } })
        case .decode:
            let sideCar = DecodeSideCar(storage: core.storage, layout: layout, backend: backend, settings: settings, logger: logger)
            core.hooks = sideCar
            logger.info("decode side-car: receiving KV over \(backend.rawValue)\(core.storage.sharedMemoryPath.map { " into \($0)" } ?? "")")
            return Attached(services: [], info: ["disaggregation_transfer_backend": backend.rawValue],
                            connect: { engine in sideCar.wake = { engine.wake() } })
        }
    }
}

/// Stops the side-car's threads when the instance shuts down.
struct SideCarStopper: Service {
    let stop: @Sendable () -> Void

    func run() async throws {
        try? await gracefulShutdown()
        stop()
    }
}
