import Foundation

/// Mean, standard deviation and percentiles of a list of latencies, in
/// milliseconds. Percentiles interpolate linearly between ranks (numpy's
/// default, which sglang's and vLLM's clients use), so small samples give
/// the same numbers as theirs.
public struct LatencySummary: Sendable, Equatable {
    public var count: Int
    public var mean: Double
    public var std: Double
    public var median: Double
    public var p90: Double
    public var p95: Double
    public var p99: Double
    public var max: Double

    /// Summarises values given in seconds; an empty list gives zeros.
    public init(seconds values: [Double]) {
        let ms = values.map { $0 * 1000 }.sorted()
        count = ms.count
        guard !ms.isEmpty else {
            (mean, std, median, p90, p95, p99, max) = (0, 0, 0, 0, 0, 0, 0)
            return
        }
        let m = ms.reduce(0, +) / Double(ms.count)
        mean = m
        std = (ms.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(ms.count)).squareRoot()
        median = Self.percentile(ms, 50)
        p90 = Self.percentile(ms, 90)
        p95 = Self.percentile(ms, 95)
        p99 = Self.percentile(ms, 99)
        max = ms[ms.count - 1]
    }

    /// The q-th percentile of sorted values, interpolating between neighbours.
    public static func percentile(_ sorted: [Double], _ q: Double) -> Double {
        guard sorted.count > 1 else { return sorted.first ?? 0 }
        let rank = q / 100 * Double(sorted.count - 1)
        let low = Int(rank.rounded(.down))
        let high = Swift.min(low + 1, sorted.count - 1)
        return sorted[low] + (sorted[high] - sorted[low]) * (rank - Double(low))
    }

    /// The keys sglang's JSONL uses: `mean_<name>_ms`, `median_…`, `std_…`, `p90_…`, `p95_…`, `p99_…`.
    public func fields(_ name: String) -> [String: Double] {
        ["mean_\(name)_ms": mean, "median_\(name)_ms": median, "std_\(name)_ms": std,
         "p90_\(name)_ms": p90, "p95_\(name)_ms": p95, "p99_\(name)_ms": p99, "max_\(name)_ms": max]
    }
}
