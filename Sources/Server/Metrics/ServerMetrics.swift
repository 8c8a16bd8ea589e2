import Engine
import Prometheus

/// The instance's Prometheus metrics, through swift-prometheus. What SGLang
/// measures has SGLang's name, labels and default buckets (`sglang:*`), so
/// its Grafana dashboard and alerts read PDServe unchanged; what SGLang has
/// no name for is `pdserve:*`.
///
/// The registry is this instance's own, not swift-metrics' process-wide
/// `MetricsSystem`: tests run several instances in one process, and each must
/// count only its own requests.
public final class ServerMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()

    // SGLang's tokenizer-side metrics: per request, labelled model_name and engine_type.
    private let timeToFirstToken: ValueHistogram
    private let interTokenLatency: ValueHistogram
    private let e2eLatency: ValueHistogram
    private let promptTokens: Counter
    private let generationTokens: Counter
    private let cachedTokens: Counter
    private let requests: Counter
    private let abortedRequests: Counter
    // SGLang's scheduler-side gauges: also labelled tp_rank and pp_rank.
    private let runningRequests: Gauge
    private let queuedRequests: Gauge
    private let usedTokens: Gauge
    private let tokenUsage: Gauge
    private let maxTotalTokens: Gauge
    private let generationThroughput: Gauge
    private let cacheHitRate: Gauge
    /// PD queues SGLang names, on the side that has them.
    private let pdQueue: (gauge: Gauge, count: @Sendable (EngineSnapshot) -> Int)?

    // PDServe's own.
    private let rejectedRequests: Counter
    private let runningTokens: Gauge
    private let kvCacheUsage: Gauge
    private let kvPagesTotal: Gauge
    private let kvPagesFree: Gauge
    private let kvPagesCached: Gauge
    private let connectionsOpen: Gauge
    private let requestsWatched: Gauge

    /// Generated tokens, and (cached, prompt) tokens of prefills, over the last 10 s.
    private let decodeWindow = RateWindow()
    private let prefillWindow = RateWindow()

    static let ttftBuckets = [0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80, 100, 200, 400]
    static let itlBuckets = [0.002, 0.004, 0.006, 0.008, 0.010, 0.015, 0.020, 0.025, 0.030, 0.035, 0.040, 0.060, 0.080, 0.100,
                             0.200, 0.400, 0.600, 0.800, 1.0, 2.0, 4.0, 6.0, 8.0]
    static let e2eBuckets = [0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80, 100, 200, 400, 600, 1200, 1800, 2400]

    /// SGLang's `engine_type` for a `--disaggregation-mode`.
    static func engineType(disaggregationMode: String) -> String {
        ["prefill", "decode"].contains(disaggregationMode) ? disaggregationMode : "unified"
    }

    public init(modelName: String, disaggregationMode: String) {
        let engineType = Self.engineType(disaggregationMode: disaggregationMode)
        let request = [("model_name", modelName), ("engine_type", engineType)]
        let scheduler = request + [("tp_rank", "0"), ("pp_rank", "0")]
        let r = registry
        timeToFirstToken = r.histogram("sglang:time_to_first_token_seconds", help: "Histogram of time to first token in seconds.",
                                       buckets: Self.ttftBuckets, labels: request)
        interTokenLatency = r.histogram("sglang:inter_token_latency_seconds", help: "Histogram of inter-token latency in seconds.",
                                        buckets: Self.itlBuckets, labels: request)
        e2eLatency = r.histogram("sglang:e2e_request_latency_seconds", help: "Histogram of end-to-end request latency in seconds.",
                                 buckets: Self.e2eBuckets, labels: request)
        promptTokens = r.counter("sglang:prompt_tokens_total", help: "Number of prefill tokens processed.", labels: request)
        generationTokens = r.counter("sglang:generation_tokens_total", help: "Number of generation tokens processed.", labels: request)
        cachedTokens = r.counter("sglang:cached_tokens_total", help: "Number of cached prompt tokens by source.",
                                 labels: request + [("cache_source", "device")])
        requests = r.counter("sglang:num_requests_total", help: "Number of requests processed.", labels: request)
        abortedRequests = r.counter("sglang:num_aborted_requests_total", help: "Number of requests aborted.", labels: request)
        runningRequests = r.gauge("sglang:num_running_reqs", help: "The number of running requests.", labels: scheduler)
        queuedRequests = r.gauge("sglang:num_queue_reqs", help: "The number of requests in the waiting queue.", labels: scheduler)
        usedTokens = r.gauge("sglang:num_used_tokens", help: "The number of used tokens (prefix-cached tokens count as free).", labels: scheduler)
        tokenUsage = r.gauge("sglang:token_usage", help: "The token usage (prefix-cached tokens count as free).", labels: scheduler)
        maxTotalTokens = r.gauge("sglang:max_total_num_tokens", help: "Maximum total number of tokens in the KV cache pool.", labels: scheduler)
        generationThroughput = r.gauge("sglang:gen_throughput", help: "The generation throughput (token/s) over the last 10 s.", labels: scheduler)
        cacheHitRate = r.gauge("sglang:cache_hit_rate", help: "The prefix cache hit rate of the prompts prefilled in the last 10 s.",
                               labels: scheduler)
        switch disaggregationMode {
        case "prefill":
            pdQueue = (r.gauge("sglang:num_prefill_inflight_queue_reqs", help: "The number of requests in the prefill inflight queue.",
                               labels: scheduler), { $0.inflight })
        case "decode":
            pdQueue = (r.gauge("sglang:num_decode_transfer_queue_reqs", help: "The number of requests in the decode transfer queue.",
                               labels: scheduler), { $0.parked })
        default:
            pdQueue = nil
        }

        rejectedRequests = r.counter("pdserve:request_rejected_total", help: "Requests refused because the queue was full or the instance drains.")
        runningTokens = r.gauge("pdserve:num_running_tokens", help: "Tokens held by running requests.")
        kvCacheUsage = r.gauge("pdserve:kv_cache_usage_perc", help: "Fraction of KV pages in use (prefix-cached pages count as used).")
        kvPagesTotal = r.gauge("pdserve:kv_pages_total", help: "KV pool size in pages.")
        kvPagesFree = r.gauge("pdserve:kv_pages_free", help: "Free KV pages.")
        kvPagesCached = r.gauge("pdserve:kv_pages_cached", help: "KV pages held only by the prefix cache (reclaimable).")
        connectionsOpen = r.gauge("pdserve:http_connections_open", help: "Open HTTP connections.")
        requestsWatched = r.gauge("pdserve:http_requests_watched", help: "Requests watched for a client disconnect (never more than those running).")
    }

    func firstToken(after seconds: Double, promptTokens prompt: Int, cachedTokens cached: Int) {
        timeToFirstToken.record(seconds)
        prefillWindow.add(Double(cached), Double(prompt))
    }

    /// `count` tokens arrived `seconds` after the previous ones. As SGLang
    /// does, each counts once at the average gap, and the sum grows by the gap.
    func tokens(_ count: Int, after seconds: Double) {
        for _ in 0..<count { interTokenLatency.record(seconds / Double(count)) }
    }

    func generated(_ count: Int) { decodeWindow.add(Double(count)) }

    func rejected() { rejectedRequests.increment() }

    func finished(_ last: RequestUpdate, e2eSeconds: Double) {
        e2eLatency.record(e2eSeconds)
        requests.increment()
        switch last.finish {
        case .failed(let failure)?:
            // Answered with a 5xx, so not a success of any finish reason.
            registry.counter("pdserve:request_failed_total", help: "Accepted requests the server failed (PD transfer errors), by kind.",
                             labels: [("kind", failure.kind.rawValue)]).increment()
            abortedRequests.increment()
        case .abort?, nil:
            abortedRequests.increment()
            success(reason: "abort")
        case let finish?:
            success(reason: finish.name)
        }
        promptTokens.increment(by: Int64(last.promptTokenCount))
        generationTokens.increment(by: Int64(last.completionTokenCount))
        cachedTokens.increment(by: Int64(last.cachedTokenCount))
        if let phases = last.phases { record(phases) }
    }

    static let phaseBuckets = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 600]
    /// 4 KiB to 4 GiB, by factors of 4.
    static let transferByteBuckets = (0...10).map { Double(4096 << (2 * $0)) }

    /// Where a finished request's time went on this instance, one series per phase it had.
    private func record(_ phases: RequestPhases) {
        for phase in RequestPhases.Phase.allCases {
            guard let seconds = phases[phase] else { continue }
            registry.histogram("pdserve:request_phase_seconds", help: "Time finished requests spent in each phase on this instance (see meta_info.phases).",
                               buckets: Self.phaseBuckets, labels: [("phase", phase.rawValue)]).record(seconds)
        }
        if let bytes = phases.transferBytes {
            registry.histogram("pdserve:kv_transfer_bytes", help: "KV bytes sent per request by this prefill instance.",
                               buckets: Self.transferByteBuckets).record(Double(bytes))
        }
    }

    private func success(reason: String) {
        registry.counter("pdserve:request_success_total", help: "Finished requests by finish reason.",
                         labels: [("finished_reason", reason)]).increment()
    }

    func http(path: String, status: Int) {
        registry.counter("pdserve:http_requests_total", help: "HTTP requests by path and status code.",
                         labels: [("path", path), ("status", String(status))]).increment()
    }

    /// Refreshes the gauges from the engine and the connections, and renders everything.
    func render(snapshot s: EngineSnapshot, connections: ConnectionCounter) -> String {
        connectionsOpen.set(Double(connections.openConnections))
        requestsWatched.set(Double(connections.watchedRequests))
        runningRequests.set(Double(s.running))
        queuedRequests.set(Double(s.waiting))
        runningTokens.set(Double(s.runningTokens))
        let used = s.totalPages - s.freePages - s.cachedPages
        usedTokens.set(Double(used * s.pageSize))
        maxTotalTokens.set(Double(s.totalPages * s.pageSize))
        tokenUsage.set(s.totalPages == 0 ? 0 : Double(used) / Double(s.totalPages))
        kvCacheUsage.set(s.totalPages == 0 ? 0 : Double(s.totalPages - s.freePages) / Double(s.totalPages))
        kvPagesTotal.set(Double(s.totalPages))
        kvPagesFree.set(Double(s.freePages))
        kvPagesCached.set(Double(s.cachedPages))
        if let pdQueue { pdQueue.gauge.set(Double(pdQueue.count(s))) }
        let tokens = decodeWindow.totals()
        generationThroughput.set(tokens.a / tokens.span)
        let prompts = prefillWindow.totals()
        cacheHitRate.set(prompts.b == 0 ? 0 : prompts.a / prompts.b)
        return registry.emitToString()
    }
}
