import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import Server

/// State shared by every request the router handles: the workers, the
/// policies that choose among them, the HTTP client, metrics.
final class RouterCore: Sendable {
    let configuration: RouterConfiguration
    let registry: WorkerRegistry
    let client: UpstreamClient
    let metrics: RouterMetrics
    let monitor: WorkerMonitor
    let logger: Logger
    /// The router's own client connections (bounded by `httpLimits`).
    let connections = ConnectionCounter()
    private let policies: [WorkerRole: any RoutingPolicy]
    /// Whether some policy looks at the prompt (only `cache_aware` does).
    let needsRoutingKey: Bool

    /// Request headers that describe one hop, not the request: never forwarded.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
        "host", "content-length", "expect", "accept-encoding",
    ]

    init(configuration: RouterConfiguration, knownRoutes: Set<String>, logger: Logger) throws(RouterSetupError) {
        self.configuration = configuration
        self.logger = logger
        registry = WorkerRegistry(health: configuration.health, breaker: configuration.circuitBreaker)
        client = UpstreamClient(apiKey: configuration.apiKey)
        metrics = RouterMetrics(knownRoutes: knownRoutes)
        let kinds: [WorkerRole: PolicyKind] = [
            .regular: configuration.policy,
            .prefill: configuration.prefillPolicy ?? configuration.policy,
            .decode: configuration.decodePolicy ?? configuration.policy,
        ]
        policies = kinds.mapValues { RoutingPolicies.make($0, cacheAware: configuration.cacheAware) }
        needsRoutingKey = kinds.values.contains(.cacheAware)
        // Load is only worth polling when some policy compares it.
        let pollsLoad = kinds.values.contains { $0 == .powerOfTwo || $0 == .cacheAware }
        monitor = WorkerMonitor(registry: registry, client: client, settings: configuration.health, pollsLoad: pollsLoad,
                                logger: logger)
        for spec in configuration.workers {
            guard configuration.accepts(spec.role) else {
                throw RouterSetupError("a \(spec.role.rawValue) worker (\(spec.url)) does not belong in \(configuration.pdDisaggregation ? "PD" : "plain") mode")
            }
            try registry.add(spec)
        }
    }

    /// A worker of `role` for a request, by that role's policy; nil when none is available.
    func pick(_ role: WorkerRole, key: String, excluding: Set<String>, full: Set<String> = []) -> Worker? {
        let candidates = registry.available(role, excluding: excluding, full: full)
        guard !candidates.isEmpty else { return nil }
        return policies[role]!.select(candidates, key: key)
    }

    /// The 503 answered when no worker of `role` can take a request.
    func noWorker(_ role: WorkerRole) -> APIError {
        let all = registry.workers(role)
        var error = APIError(.serviceUnavailable, type: "no_available_workers",
                             all.isEmpty ? "No \(role.rawValue) worker is registered."
                                 : "None of the \(all.count) \(role.rawValue) worker(s) is available (unhealthy or circuit open).")
        error.retryAfterSeconds = 1
        return error
    }

    /// Adds a worker at run time and checks it at once, so the answer says whether it is ready.
    func addWorker(_ spec: WorkerSpec) async throws(RouterSetupError) -> Worker {
        guard configuration.accepts(spec.role) else {
            throw RouterSetupError("mode '\(spec.role.rawValue)' does not belong in \(configuration.pdDisaggregation ? "PD mode (use prefill or decode)" : "plain mode (use regular)")")
        }
        let worker = try registry.add(spec)
        if !configuration.health.disabled { await monitor.check(worker) }
        logger.info("worker added", metadata: ["worker": "\(spec.url)", "role": "\(spec.role.rawValue)", "ready": "\(worker.isReady)"])
        return worker
    }

    func removeWorker(url: String) -> Worker? {
        guard let worker = registry.remove(url: url) else { return nil }
        policies[worker.role]?.forget(url: url)
        monitor.forget(url: url)
        logger.info("worker removed", metadata: ["worker": "\(url)"])
        return worker
    }

    /// A request failed on `worker` for a reason that says the worker is broken.
    func recordFailure(_ worker: Worker, _ error: any Error) {
        let detail = UpstreamClient.describe(error)
        worker.recordOutcome(failed: true, detail: detail)
        if case .unreachable = error as? UpstreamFailure { worker.markUnreachable(detail) }
        metrics.upstream(worker, status: nil)
        logger.warning("worker failed", metadata: ["worker": "\(worker.url)", "error": "\(detail)"])
    }

    /// A worker answered `status`: 5xx counts against its circuit, anything else for it
    /// — except an overload answer (`UpstreamReply.isOverload`), which says the
    /// worker works but is full and so leaves the circuit as it is.
    func recordStatus(_ worker: Worker, _ status: Int, retryAfter: String? = nil) {
        if !UpstreamReply.isOverload(status: status, retryAfter: retryAfter) {
            worker.recordOutcome(failed: status >= 500, detail: status >= 500 ? "answered \(status)" : nil)
        }
        metrics.upstream(worker, status: status)
    }

    func recordReply(_ worker: Worker, _ reply: UpstreamReply) {
        recordStatus(worker, reply.status, retryAfter: reply.retryAfter)
    }

    /// Tells the half of a failed pair that is still working to stop, so it
    /// does not hold a request (a decode waiting for KV that never comes).
    /// The retry waits for it: the next attempt keeps the rid and may go to
    /// the same worker, where a late abort would kill the new attempt instead.
    func abortOrphan(_ worker: Worker, rids: [String]) async {
        metrics.orphanAbort(role: worker.role)
        let timeout = configuration.health.timeoutSeconds
        logger.info("aborting orphaned half", metadata: ["worker": "\(worker.url)", "rid": "\(rids.joined(separator: ","))"])
        for rid in rids {
            do {
                _ = try await client.call(.POST, worker.url + "/abort_request", json: ["rid": rid], timeoutSeconds: timeout)
            } catch {
                logger.debug("abort not delivered", metadata: ["worker": "\(worker.url)", "error": "\(UpstreamClient.describe(error))"])
            }
        }
    }

    /// The client's request headers that travel on to a worker (Authorization included).
    static func forwardable(_ fields: HTTPFields, contentType: String?) -> HTTPHeaders {
        var headers = HTTPHeaders()
        for field in fields where !hopByHop.contains(field.name.canonicalName) {
            if contentType != nil && field.name == .contentType { continue }
            headers.add(name: field.name.rawName, value: field.value)
        }
        if let contentType { headers.add(name: "content-type", value: contentType) }
        return headers
    }

    /// A worker's response headers that travel back to the client.
    static func returnable(_ headers: HTTPHeaders) -> HTTPFields {
        var fields = HTTPFields()
        for (name, value) in headers where !hopByHop.contains(name.lowercased()) && name.lowercased() != "server" && name.lowercased() != "date" {
            if let fieldName = HTTPFields.Element.Name(name) { fields.append(HTTPFields.Element(name: fieldName, value: value)) }
        }
        return fields
    }

    /// A worker's complete reply as the client's response, unchanged.
    static func response(_ reply: UpstreamReply) -> Response {
        var headers = HTTPFields()
        if let type = reply.contentType { headers[.contentType] = type }
        if let retryAfter = reply.retryAfter { headers[.retryAfter] = retryAfter }
        return Response(status: .init(code: reply.status), headers: headers, body: .init(byteBuffer: reply.body))
    }

    /// An SSE event carrying an error, for failures after a 200 stream began.
    static func sseError(_ error: APIError) -> ByteBuffer {
        ByteBuffer(bytes: Array("data: ".utf8) + JSON.encode(error.body) + Array("\n\ndata: [DONE]\n\n".utf8))
    }

    /// The error a client gets when no attempt got a usable answer.
    static func gatewayError(_ error: any Error, worker: Worker) -> APIError {
        if case .timedOut(let seconds)? = error as? UpstreamFailure {
            return APIError(.gatewayTimeout, type: "upstream_timeout", "Worker \(worker.url) gave no complete answer within \(Int(seconds))s.")
        }
        return APIError(.badGateway, type: "upstream_error", "Worker \(worker.url) could not be reached: \(UpstreamClient.describe(error))")
    }
}
