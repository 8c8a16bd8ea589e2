import Engine

/// The instance's Prometheus metrics, named like SGLang's and vLLM's
/// (`<prefix>:<name>`) so existing dashboards carry over.
public final class ServerMetrics: Sendable {
    public let registry = MetricsRegistry()
    private let p = "pdserve:"
    static let latencyBuckets = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80]

    public init() {
        registry.counter(p + "request_success_total", help: "Finished requests by finish reason.", labels: ["finished_reason"])
        registry.counter(p + "request_rejected_total", help: "Requests refused because the queue was full.")
        registry.counter(p + "request_failed_total", help: "Accepted requests the server failed (PD transfer errors), by kind.", labels: ["kind"])
        registry.counter(p + "http_requests_total", help: "HTTP requests by path and status code.", labels: ["path", "status"])
        registry.counter(p + "prompt_tokens_total", help: "Prompt tokens processed.")
        registry.counter(p + "generation_tokens_total", help: "Tokens generated.")
        registry.counter(p + "cached_tokens_total", help: "Prompt tokens served from the prefix cache.")
        registry.histogram(p + "time_to_first_token_seconds", help: "Time to first token.", buckets: Self.latencyBuckets)
        registry.histogram(p + "inter_token_latency_seconds", help: "Time between consecutive output tokens.", buckets: Self.latencyBuckets)
        registry.histogram(p + "e2e_request_latency_seconds", help: "Request latency from arrival to last token.", buckets: Self.latencyBuckets)
        registry.gauge(p + "num_requests_running", help: "Requests in the running batch.")
        registry.gauge(p + "num_requests_waiting", help: "Requests waiting to be scheduled.")
        registry.gauge(p + "num_running_tokens", help: "Tokens held by running requests.")
        registry.gauge(p + "kv_cache_usage_perc", help: "Fraction of KV pages in use (prefix-cached pages count as used).")
        registry.gauge(p + "kv_pages_total", help: "KV pool size in pages.")
        registry.gauge(p + "kv_pages_free", help: "Free KV pages.")
        registry.gauge(p + "kv_pages_cached", help: "KV pages held only by the prefix cache (reclaimable).")
        registry.gauge(p + "http_connections_open", help: "Open HTTP connections.")
        registry.gauge(p + "http_requests_watched", help: "Requests watched for a client disconnect (never more than those running).")
    }

    func timeToFirstToken(_ seconds: Double) { registry.observe(p + "time_to_first_token_seconds", seconds) }
    func interTokenLatency(_ seconds: Double) { registry.observe(p + "inter_token_latency_seconds", seconds) }
    func rejected() { registry.increment(p + "request_rejected_total") }

    func finished(_ last: RequestUpdate, e2eSeconds: Double) {
        registry.observe(p + "e2e_request_latency_seconds", e2eSeconds)
        if case .failed(let failure)? = last.finish {
            // Answered with a 5xx, so not a success of any finish reason.
            registry.increment(p + "request_failed_total", labels: [failure.kind.rawValue])
        } else {
            registry.increment(p + "request_success_total", labels: [last.finish?.name ?? "abort"])
        }
        registry.increment(p + "prompt_tokens_total", by: Double(last.promptTokenCount))
        registry.increment(p + "generation_tokens_total", by: Double(last.completionTokenCount))
        registry.increment(p + "cached_tokens_total", by: Double(last.cachedTokenCount))
    }

    func http(path: String, status: Int) {
        registry.increment(p + "http_requests_total", labels: [path, String(status)])
    }

    /// Refreshes the gauges from the engine and the connections, and renders everything.
    func render(snapshot s: EngineSnapshot, connections: ConnectionCounter) -> String {
        registry.set(p + "http_connections_open", Double(connections.openConnections))
        registry.set(p + "http_requests_watched", Double(connections.watchedRequests))
        registry.set(p + "num_requests_running", Double(s.running))
        registry.set(p + "num_requests_waiting", Double(s.waiting))
        registry.set(p + "num_running_tokens", Double(s.runningTokens))
        registry.set(p + "kv_cache_usage_perc", s.totalPages == 0 ? 0 : Double(s.totalPages - s.freePages) / Double(s.totalPages))
        registry.set(p + "kv_pages_total", Double(s.totalPages))
        registry.set(p + "kv_pages_free", Double(s.freePages))
        registry.set(p + "kv_pages_cached", Double(s.cachedPages))
        return registry.render()
    }
}
