import Foundation
import Prometheus
import Server

/// The router's Prometheus metrics (swift-prometheus): requests by route and
/// status, calls to each worker by outcome, retries, orphan aborts, latency,
/// and per-worker health, circuit state and load.
final class RouterMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    /// Routes counted under their own label; anything else is "other", so scans cannot blow up cardinality.
    let knownRoutes: Set<String>
    /// The per-worker gauges made so far, so a worker that left is unregistered, not reported forever.
    private let workerGauges = WorkerGaugeSet()

    static let prefix = "pdserve_router:"
    static let durationBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300]

    init(knownRoutes: Set<String>) {
        self.knownRoutes = knownRoutes
    }

    func route(_ path: String) -> String { knownRoutes.contains(path) ? path : "other" }

    func request(route: String, status: Int, seconds: Double) {
        let p = Self.prefix
        registry.counter(p + "requests_total", help: "Requests answered by the router, by route and HTTP status.",
                         labels: [("route", route), ("status", String(status))]).increment()
        registry.histogram(p + "request_duration_seconds", help: "Time from request to response head (streams: to first byte), by route.",
                           buckets: Self.durationBuckets, labels: [("route", route)]).record(seconds)
    }

    func upstream(_ worker: Worker, status: Int?) {
        registry.counter(Self.prefix + "worker_requests_total",
                         help: "Requests sent to each worker, by outcome (HTTP status, or 'error' when there was no answer).",
                         labels: [("worker", worker.url), ("role", worker.role.rawValue), ("status", status.map(String.init) ?? "error")]).increment()
    }

    func retry(route: String) {
        registry.counter(Self.prefix + "retries_total", help: "Requests sent again to other workers after a 5xx or no answer, by route.",
                         labels: [("route", route)]).increment()
    }

    func orphanAbort(role: WorkerRole) {
        registry.counter(Self.prefix + "orphan_aborts_total", help: "Aborts sent to the surviving half of a failed prefill/decode pair, by that half's role.",
                         labels: [("role", role.rawValue)]).increment()
    }

    /// The exposition text, with the per-worker gauges taken fresh.
    func render(workers: [Worker]) -> String {
        let p = Self.prefix
        var current: [String: [Gauge]] = [:]
        for worker in workers {
            let labels = [("worker", worker.url), ("role", worker.role.rawValue)]
            let gauges = [
                registry.gauge(p + "worker_healthy", help: "1 when the worker answers its health checks (and, for a prefill, its bootstrap server does).",
                               labels: labels),
                registry.gauge(p + "worker_circuit_state", help: "Circuit breaker state: 0 closed, 1 open, 2 half-open.", labels: labels),
                registry.gauge(p + "worker_load", help: "Requests running or queued on the worker, as balancing sees it.", labels: labels),
            ]
            gauges[0].set(worker.isReady ? 1.0 : 0.0)
            gauges[1].set(worker.circuitState.gauge)
            gauges[2].set(Double(worker.load))
            current[worker.role.rawValue + " " + worker.url] = gauges
        }
        for gauge in workerGauges.replace(with: current) { registry.unregisterGauge(gauge) }
        return registry.emitToString()
    }
}

/// The per-worker gauges of the last render, keyed by role and URL.
private final class WorkerGaugeSet: @unchecked Sendable {
    private let lock = NSLock()
    private var gauges: [String: [Gauge]] = [:]

    /// Stores `current` and returns the gauges of workers no longer in it.
    func replace(with current: [String: [Gauge]]) -> [Gauge] {
        lock.withLock {
            let gone = gauges.filter { current[$0.key] == nil }.values.flatMap { $0 }
            gauges = current
            return gone
        }
    }
}
