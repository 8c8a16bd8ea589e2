import Foundation
import Hummingbird
import Logging
import NIOCore
import Server
import ServiceLifecycle

/// `pdserve router`: the HTTP front that pairs prefill and decode workers
/// (or balances over unified ones), speaking the same contract as
/// sglang-router so either router can stand in front of PDServe instances.
public struct RouterServer: Sendable {
    public let configuration: RouterConfiguration
    public let logger: Logger

    /// Paths with their own metrics label.
    static let knownRoutes: Set<String> = [
        "/generate", "/v1/completions", "/v1/chat/completions", "/health", "/health_generate", "/v1/models",
        "/get_model_info", "/model_info", "/get_server_info", "/server_info", "/get_load", "/flush_cache",
        "/abort_request", "/metrics", "/workers", "/liveness", "/readiness", "/start_profile", "/stop_profile",
    ]

    public init(configuration: RouterConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    func makeRouter(core: RouterCore) -> Hummingbird.Router<BasicRequestContext> {
        let router = Hummingbird.Router(context: BasicRequestContext.self)
        if configuration.tracing { router.add(middleware: InferenceTracingMiddleware()) }
        router.add(middleware: RouterFrontMiddleware(apiKey: configuration.apiKey, metrics: core.metrics))
        let inference = InferenceEndpoint(core: core)
        let info = InfoEndpoints(core: core)
        let workers = WorkersEndpoint(core: core)
        for path in ["/generate", "/v1/completions", "/v1/chat/completions"] {
            router.post(RouterPath(path)) { try await inference.handle($0, context: $1) }
        }
        router.get("/health") { _, _ in Response(status: .ok) }
        // Liveness: the process answers. Readiness: it can route a request now.
        router.get("/liveness") { _, _ in JSON.response(["status": "alive"]) }
        router.get("/readiness") { _, _ in info.readiness() }
        router.get("/health_generate") { request, _ in await info.healthGenerate(request) }
        for path in ["/v1/models", "/v1/models/**", "/get_model_info", "/model_info", "/get_server_info", "/server_info"] {
            router.get(RouterPath(path)) { request, _ in try await info.forwardToOne(request) }
        }
        router.get("/get_load") { request, _ in await info.load(request) }
        router.post("/flush_cache") { request, _ in try await info.broadcast(request, path: "/flush_cache") }
        router.get("/flush_cache") { request, _ in try await info.broadcast(request, path: "/flush_cache") }
        router.post("/abort_request") { request, _ in try await info.broadcast(request, path: "/abort_request") }
        // Every instance (both halves of each PD pair) profiles itself and writes its own trace.
        for path in ["/start_profile", "/stop_profile"] {
            router.post(RouterPath(path)) { request, _ in try await info.broadcast(request, path: path) }
            router.get(RouterPath(path)) { request, _ in try await info.broadcast(request, path: path) }
        }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: core.metrics.render(workers: core.registry.all))))
        }
        router.get("/workers") { _, _ in workers.list() }
        router.post("/workers") { request, _ in try await workers.add(request) }
        router.delete("/workers") { request, _ in try await workers.remove(request) }
        return router
    }

    /// Serves until SIGTERM/SIGINT. `onReady` gets the bound port once every
    /// configured worker is ready (or the start-up wait ran out; workers not
    /// ready then are skipped until their health checks pass).
    public func run(extraServices: [any Service] = [], onReady: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let core = try RouterCore(configuration: configuration, knownRoutes: Self.knownRoutes, logger: logger)
        let logger = self.logger, startup = configuration.health.startupTimeoutSeconds
        let app = Application(
            router: makeRouter(core: core),
            server: configuration.httpLimits.server(counter: core.connections),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "pdserve-router"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                core.monitor.serverIsListening()
                // Waiting here would hold up accepting connections (and /workers), so wait beside it.
                Task {
                    let waiting = await core.monitor.waitUntilReady(timeoutSeconds: startup)
                    for worker in waiting {
                        logger.warning("worker not ready; skipped until it is", metadata: ["worker": "\(worker.url)", "role": "\(worker.role.rawValue)"])
                    }
                    await onReady(port)
                }
            },
            logger: logger
        )
        let group = ServiceGroup(configuration: .init(services: extraServices + [core.monitor, app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            await core.client.shutdown()
            throw error
        }
        await core.client.shutdown()
    }
}
