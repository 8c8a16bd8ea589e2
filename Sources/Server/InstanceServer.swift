import Engine
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// One serving instance: the HTTP API in front of an `Engine`.
public struct InstanceServer: Sendable {
    public let engine: Engine
    public let configuration: ServerConfiguration
    public let metrics: ServerMetrics
    public let logger: Logger

    public init(engine: Engine, configuration: ServerConfiguration, logger: Logger) {
        self.engine = engine
        self.configuration = configuration
        self.logger = logger
        metrics = ServerMetrics(modelName: configuration.servedModelName, disaggregationMode: configuration.disaggregationMode)
    }

    /// Every route of the instance.
    func makeRouter(service: InferenceService) -> Router<ServerRequestContext> {
        let router = Router(context: ServerRequestContext.self)
        let info = InfoHandlers(service: service)
        let completions = CompletionsHandler(service: service)
        let generate = GenerateHandler(service: service)
        let chat = ChatCompletionsHandler(service: service)
        let known: Set<String> = [
            "/v1/completions", "/v1/chat/completions", "/generate", "/v1/models", "/health", "/health_generate",
            "/get_server_info", "/server_info", "/get_model_info", "/model_info", "/get_load", "/flush_cache",
            "/abort_request", "/metrics", "/liveness", "/readiness", "/drain", "/start_profile", "/stop_profile",
        ]
        if configuration.tracing { router.add(middleware: InferenceTracingMiddleware()) }
        router.add(middleware: ServerMiddleware(apiKey: configuration.apiKey, metrics: metrics, knownPaths: known))
        router.post("/v1/completions") { try await completions.handle($0, context: $1) }
        router.post("/v1/chat/completions") { try await chat.handle($0, context: $1) }
        router.post("/generate") { try await generate.handle($0, context: $1) }
        router.get("/v1/models") { _, _ in info.models() }
        router.get("/v1/models/**") { _, context in
            try info.model(id: context.parameters.getCatchAll().joined(separator: "/").removingPercentEncoding ?? "")
        }
        router.get("/health") { _, _ in info.health() }
        router.get("/liveness") { _, _ in JSON.response(["status": "alive"]) }
        router.get("/readiness") { _, _ in info.readiness() }
        router.post("/drain") { _, context in info.drain(context: context) }
        router.get("/health_generate") { _, context in await info.healthGenerate(context: context) }
        for path in ["/get_server_info", "/server_info"] { router.get(RouterPath(path)) { _, _ in await info.serverInfo() } }
        for path in ["/get_model_info", "/model_info"] { router.get(RouterPath(path)) { _, _ in info.modelInfo() } }
        router.get("/get_load") { _, _ in await info.load() }
        router.post("/flush_cache") { _, _ in await info.flushCache() }
        router.get("/flush_cache") { _, _ in await info.flushCache() }
        router.post("/abort_request") { try await info.abort($0, context: $1) }
        router.get("/metrics") { _, _ in await info.metrics() }
        let profile = ProfileHandler(profiler: engine.profiler, configuration: configuration)
        router.post("/start_profile") { try await profile.start($0, context: $1) }
        router.get("/start_profile") { try await profile.start($0, context: $1) }
        router.post("/stop_profile") { try await profile.stop($0, context: $1) }
        router.get("/stop_profile") { try await profile.stop($0, context: $1) }
        return router
    }

    /// Serves until SIGTERM/SIGINT. In-flight requests get
    /// `shutdownTimeout` seconds to finish; then they are aborted and the
    /// process ends with the engine stopped. `onReady` receives the bound port.
    public func run(extraServices: [any Service] = [], onReady: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let service = InferenceService(engine: engine, configuration: configuration, metrics: metrics)
        let app = Application(
            router: makeRouter(service: service),
            server: configuration.httpLimits.server(counter: service.connections) { [ClientDisconnectHandler(counter: service.connections)] },
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "pdserve"),
            onServerRunning: { channel in await onReady(channel.localAddress?.port ?? 0) },
            logger: logger
        )
        // Listed last, so it hears the shutdown signal first: the HTTP server
        // keeps accepting (and answering 503) until it has drained.
        let deadline = ShutdownDeadline(engine: engine, lifecycle: service.lifecycle, inFlight: { service.inFlightCount },
                                        seconds: configuration.shutdownTimeout, logger: logger)
        let group = ServiceGroup(configuration: .init(services: extraServices + [app, deadline], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        engine.shutdown()
    }
}

/// SIGTERM (or SIGINT) drains first: the listener stays open and new
/// requests get a retryable 503 while what was admitted finishes, for at
/// most `seconds`; then whatever still runs is aborted and the HTTP server
/// is let go (it stops accepting once this service returns, being listed
/// after it).
struct ShutdownDeadline: Service {
    let engine: Engine
    let lifecycle: InstanceLifecycle
    let inFlight: @Sendable () -> Int
    let seconds: Double
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        lifecycle.drain()
        logger.info("shutting down: draining, in-flight requests have \(seconds)s to finish", metadata: ["in_flight": "\(inFlight())"])
        let deadline = ContinuousClock.now + .seconds(seconds)
        while inFlight() > 0, ContinuousClock.now < deadline, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(50))
        }
        if inFlight() > 0 {
            logger.warning("shutdown deadline passed; aborting in-flight requests", metadata: ["in_flight": "\(inFlight())"])
            engine.abortEverything(message: "server shutting down")
        }
    }
}
