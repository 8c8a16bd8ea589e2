import Foundation

/// Renders a finished run: the text table `sglang.bench_serving` prints
/// (with one section per workload class in a mixed run), and the JSONL
/// record `--output-file` appends, keyed as sglang's.
public struct ServingReport {
    public var backend: String
    public var datasetName: String
    /// Overall arrival rate (sum of the classes' rates); infinite when all at once.
    public var requestRate: Double
    public var maxConcurrency: Int?
    public var pdSeparated: Bool
    public var objectives: GoodputObjectives
    /// The classes of a mixed run (empty for a plain run).
    public var workloads: [WorkloadClass]
    /// Run settings copied into the JSONL record as they are (random_input_len, seed, ...).
    public var settings: [String: Any]
    public var result: ServingRunResult

    public init(backend: String, datasetName: String, requestRate: Double, maxConcurrency: Int?, pdSeparated: Bool,
                objectives: GoodputObjectives, workloads: [WorkloadClass], settings: [String: Any], result: ServingRunResult) {
        self.backend = backend
        self.datasetName = datasetName
        self.requestRate = requestRate
        self.maxConcurrency = maxConcurrency
        self.pdSeparated = pdSeparated
        self.objectives = objectives
        self.workloads = workloads
        self.settings = settings
        self.result = result
    }

    public var overall: ServingMetrics { result.metrics(objectives: objectives) }

    public func metrics(of workloadClass: String) -> ServingMetrics { result.metrics(objectives: objectives, workloadClass: workloadClass) }

    // MARK: text

    public func text() -> String {
        var lines: [String] = []
        func row(_ label: String, _ value: String) { lines.append(label.padding(toLength: 41, withPad: " ", startingAt: 0) + value) }
        func number(_ v: Double) -> String { String(format: "%.2f", v) }
        func section(_ title: String) {
            let dashes = max(0, 50 - title.count)
            lines.append(String(repeating: "-", count: dashes / 2) + title + String(repeating: "-", count: dashes - dashes / 2))
        }
        func body(_ m: ServingMetrics) {
            row("Successful requests:", "\(m.completed)")
            if m.failed > 0 { row("Failed requests:", "\(m.failed)") }
            row("Total input tokens:", "\(m.totalInputTokens)")
            row("Total generated tokens:", "\(m.totalOutputTokens)")
            row("Request throughput (req/s):", number(m.requestThroughput))
            if let goodput = m.goodput { row("Request goodput (req/s):", number(goodput) + "  (\(m.goodRequests ?? 0) good)") }
            row("Input token throughput (tok/s):", number(m.inputThroughput))
            row("Output token throughput (tok/s):", number(m.outputThroughput))
            row("Total token throughput (tok/s):", number(m.totalThroughput))
            row("Concurrency:", number(m.concurrency))
            for (title, name, s) in [("End-to-End Latency", "E2E Latency", m.e2e), ("Time to First Token", "TTFT", m.ttft),
                                     ("Time per Output Token (excl. 1st token)", "TPOT", m.tpot), ("Inter-token Latency", "ITL", m.itl)] {
                section(title)
                row("Mean \(name) (ms):", number(s.mean))
                row("Median \(name) (ms):", number(s.median))
                row("P99 \(name) (ms):", number(s.p99))
            }
        }
        lines.append("============ Serving Benchmark Result ============")
        row("Backend:", backend)
        row("Traffic request rate:", requestRate.isInfinite ? "inf" : number(requestRate))
        row("Max request concurrency:", maxConcurrency.map(String.init) ?? "not set")
        if pdSeparated { row("PD separated:", "yes (the target is a PD router)") }
        if !objectives.isEmpty { row("Goodput objectives (ms):", objectives.description) }
        row("Benchmark duration (s):", number(result.durationSeconds))
        body(overall)
        for workload in workloads {
            lines.append("")
            lines.append("=== class \(workload.name): \(workload.inputLength) in / \(workload.outputLength) out, \(number(workload.rate)) req/s ===")
            body(metrics(of: workload.name))
        }
        lines.append("==================================================")
        return lines.joined(separator: "\n")
    }

    // MARK: JSONL

    /// One JSON object per run. With `details`, per-request lists too
    /// (`ttfts`, `itls`, `input_lens`, `output_lens`, `classes`, `errors`, in seconds as sglang writes them).
    public func record(details: Bool) -> [String: Any] {
        var r = settings
        for (key, value) in overall.fields { r[key] = value }
        r["backend"] = backend
        r["dataset_name"] = datasetName
        // JSON has no infinity; sglang writes the string "inf" as well.
        r["request_rate"] = requestRate.isInfinite ? "inf" as Any : requestRate as Any
        r["max_concurrency"] = maxConcurrency.map { $0 as Any } ?? NSNull()
        r["pd_separated"] = pdSeparated
        r["date"] = ISO8601DateFormatter().string(from: result.startedAt)
        if !objectives.isEmpty { r["goodput_objectives"] = objectives.description }
        if !workloads.isEmpty {
            var classes: [String: Any] = [:]
            for w in workloads {
                var fields = metrics(of: w.name).fields
                fields["rate"] = w.rate
                fields["input_len"] = w.inputLength
                fields["output_len"] = w.outputLength
                classes[w.name] = fields
            }
            r["classes"] = classes
        }
        if details {
            let o = result.outcomes
            r["ttfts"] = o.map(\.ttft)
            r["itls"] = o.map(\.itls)
            r["e2e_latencies"] = o.map(\.latency)
            r["sent_at"] = o.map(\.sentAt)
            r["input_lens"] = o.map(\.promptLength)
            r["output_lens"] = o.map(\.outputLength)
            r["classes_of_requests"] = o.map(\.workloadClass)
            r["errors"] = o.map { $0.error ?? "" }
        }
        return r
    }

    /// The record as one line of JSON (keys sorted, so runs diff cleanly).
    public func jsonLine(details: Bool) throws -> String {
        let data = try JSONSerialization.data(withJSONObject: record(details: details), options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}
