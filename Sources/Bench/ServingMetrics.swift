/// The aggregate numbers of a set of requests (a whole run, or one workload
/// class of it) over the run's duration.
public struct ServingMetrics: Sendable {
    public var completed = 0
    public var failed = 0
    public var totalInputTokens = 0
    public var totalOutputTokens = 0
    /// Output tokens asked for by the completed requests (equals the total when `ignore_eos` was honoured).
    public var requestedOutputTokens = 0
    public var durationSeconds: Double
    public var ttft: LatencySummary
    public var tpot: LatencySummary
    public var itl: LatencySummary
    public var e2e: LatencySummary
    /// Requests that met every goodput objective; nil when none was given.
    public var goodRequests: Int?

    public init(outcomes: [ServingRequestOutcome], durationSeconds: Double, objectives: GoodputObjectives) {
        let done = outcomes.filter(\.success)
        completed = done.count
        failed = outcomes.count - done.count
        totalInputTokens = done.reduce(0) { $0 + $1.promptLength }
        totalOutputTokens = done.reduce(0) { $0 + $1.outputLength }
        requestedOutputTokens = done.reduce(0) { $0 + $1.requestedOutputLength }
        self.durationSeconds = durationSeconds
        ttft = LatencySummary(seconds: done.map(\.ttft))
        tpot = LatencySummary(seconds: done.compactMap(\.tpot))
        itl = LatencySummary(seconds: done.flatMap(\.itls))
        e2e = LatencySummary(seconds: done.map(\.latency))
        goodRequests = objectives.isEmpty ? nil : done.filter { objectives.isMet(by: $0) }.count
        concurrency = durationSeconds > 0 ? done.reduce(0) { $0 + $1.latency } / durationSeconds : 0
    }

    private func perSecond(_ value: Int) -> Double { durationSeconds > 0 ? Double(value) / durationSeconds : 0 }

    public var requestThroughput: Double { perSecond(completed) }
    public var inputThroughput: Double { perSecond(totalInputTokens) }
    public var outputThroughput: Double { perSecond(totalOutputTokens) }
    public var totalThroughput: Double { perSecond(totalInputTokens + totalOutputTokens) }
    /// Good requests per second.
    public var goodput: Double? { goodRequests.map { perSecond($0) } }
    /// Mean requests in flight (sum of latencies over the duration), as sglang reports it.
    public private(set) var concurrency: Double

    /// sglang's JSONL keys for these numbers.
    public var fields: [String: Any] {
        var f: [String: Any] = [
            "completed": completed, "failed": failed, "duration": durationSeconds,
            "total_input_tokens": totalInputTokens, "total_output_tokens": totalOutputTokens,
            "request_throughput": requestThroughput, "input_throughput": inputThroughput,
            "output_throughput": outputThroughput, "total_throughput": totalThroughput, "concurrency": concurrency,
        ]
        for (name, summary) in [("ttft", ttft), ("tpot", tpot), ("itl", itl), ("e2e_latency", e2e)] {
            for (key, value) in summary.fields(name) { f[key] = value }
        }
        if let goodRequests, let goodput {
            f["good_requests"] = goodRequests
            f["request_goodput"] = goodput
        }
        return f
    }
}
