/// Service-level objectives for goodput (`--goodput ttft:MS tpot:MS e2e:MS`):
/// a request counts as good when it succeeded and met every objective given.
public struct GoodputSLO: Sendable, Equatable {
    public var ttftMs: Double?
    public var tpotMs: Double?
    public var e2eMs: Double?

    public init(ttftMs: Double? = nil, tpotMs: Double? = nil, e2eMs: Double? = nil) {
        self.ttftMs = ttftMs
        self.tpotMs = tpotMs
        self.e2eMs = e2eMs
    }

    /// Parses `KEY:MS` items; keys ttft, tpot, e2e (vLLM's `e2el` too).
    public init(parsing items: [String]) throws {
        for item in items {
            let parts = item.split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2, let value = Double(parts[1]), value > 0 else {
                throw ServingBenchmarkError.usage("--goodput takes KEY:MILLISECONDS items (ttft, tpot, e2e), got '\(item)'")
            }
            switch parts[0].lowercased() {
            case "ttft": ttftMs = value
            case "tpot": tpotMs = value
            case "e2e", "e2el": e2eMs = value
            default: throw ServingBenchmarkError.usage("--goodput: unknown objective '\(parts[0])'; use ttft, tpot or e2e")
            }
        }
    }

    public var isEmpty: Bool { ttftMs == nil && tpotMs == nil && e2eMs == nil }

    public func isMet(by outcome: ServingRequestOutcome) -> Bool {
        guard outcome.success else { return false }
        if let ttftMs, outcome.ttft * 1000 > ttftMs { return false }
        // A one-token output has no TPOT, so nothing to miss.
        if let tpotMs, let tpot = outcome.tpot, tpot * 1000 > tpotMs { return false }
        if let e2eMs, outcome.latency * 1000 > e2eMs { return false }
        return true
    }

    /// `ttft:500 tpot:50`, for reports.
    public var description: String {
        [ttftMs.map { "ttft:\(Self.format($0))" }, tpotMs.map { "tpot:\(Self.format($0))" }, e2eMs.map { "e2e:\(Self.format($0))" }]
            .compactMap { $0 }.joined(separator: " ")
    }

    private static func format(_ v: Double) -> String { v == v.rounded() ? String(Int(v)) : String(v) }
}
