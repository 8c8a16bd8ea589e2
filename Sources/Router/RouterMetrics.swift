import Server

/// The router's Prometheus metrics: requests by route and status, calls to
/// each worker by outcome, retries, orphan aborts, latency, and per-worker
/// health, circuit state and load.
final class RouterMetrics: Sendable {
    let registry = MetricsRegistry()
    /// Routes counted under their own label; anything else is "other", so scans cannot blow up cardinality.
    let knownRoutes: Set<String>

    static let prefix = "pdserve_router:"

    init(knownRoutes: Set<String>) {
        self.knownRoutes = knownRoutes
        let p = Self.prefix
        registry.counter(p + "requests_total", help: "Requests answered by the router, by route and HTTP status.", labels: ["route", "status"])
        registry.histogram(p + "request_duration_seconds", help: "Time from request to response head (streams: to first byte), by route.",
                           buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300], labels: ["route"])
        registry.counter(p + "worker_requests_total", help: "Requests sent to each worker, by outcome (HTTP status, or 'error' when there was no answer).",
                         labels: ["worker", "role", "status"])
        registry.counter(p + "retries_total", help: "Requests sent again to other workers after a 5xx or no answer, by route.", labels: ["route"])
        registry.counter(p + "orphan_aborts_total", help: "Aborts sent to the surviving half of a failed prefill/decode pair, by that half's role.",
                         labels: ["role"])
        registry.gauge(p + "worker_healthy", help: "1 when the worker answers its health checks (and, for a prefill, its bootstrap server does).",
                       labels: ["worker", "role"])
        registry.gauge(p + "worker_circuit_state", help: "Circuit breaker state: 0 closed, 1 open, 2 half-open.", labels: ["worker", "role"])
        registry.gauge(p + "worker_load", help: "Requests running or queued on the worker, as balancing sees it.", labels: ["worker", "role"])
    }

    func route(_ path: String) -> String { knownRoutes.contains(path) ? path : "other" }

    func request(route: String, status: Int, seconds: Double) {
        registry.increment(Self.prefix + "requests_total", labels: [route, String(status)])
        registry.observe(Self.prefix + "request_duration_seconds", seconds, labels: [route])
    }

    func upstream(_ worker: Worker, status: Int?) {
        registry.increment(Self.prefix + "worker_requests_total", labels: [worker.url, worker.role.rawValue, status.map(String.init) ?? "error"])
    }

    func retry(route: String) { registry.increment(Self.prefix + "retries_total", labels: [route]) }

    func orphanAbort(role: WorkerRole) { registry.increment(Self.prefix + "orphan_aborts_total", labels: [role.rawValue]) }

    /// The exposition text, with the per-worker gauges taken fresh.
    func render(workers: [Worker]) -> String {
        for name in ["worker_healthy", "worker_circuit_state", "worker_load"] { registry.reset(Self.prefix + name) }
        for worker in workers {
            let labels = [worker.url, worker.role.rawValue]
            registry.set(Self.prefix + "worker_healthy", worker.isReady ? 1 : 0, labels: labels)
            registry.set(Self.prefix + "worker_circuit_state", worker.circuitState.gauge, labels: labels)
            registry.set(Self.prefix + "worker_load", Double(worker.load), labels: labels)
        }
        return registry.render()
    }
}
