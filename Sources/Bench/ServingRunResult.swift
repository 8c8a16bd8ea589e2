import Foundation

/// Everything a measured run produced: per-request outcomes in arrival
/// order and the run's wall-clock span.
public struct ServingRunResult: Sendable {
    public var outcomes: [ServingRequestOutcome]
    /// From the first send to the last response's end.
    public var durationSeconds: Double
    public var startedAt: Date

    /// Metrics over every request, or over one workload class.
    public func metrics(objectives: GoodputObjectives, workloadClass: String? = nil) -> ServingMetrics {
        let selected = workloadClass.map { name in outcomes.filter { $0.workloadClass == name } } ?? outcomes
        return ServingMetrics(outcomes: selected, durationSeconds: durationSeconds, objectives: objectives)
    }

    /// Workload classes in first-seen order.
    public var workloadClasses: [String] {
        var seen: [String] = []
        for o in outcomes where !seen.contains(o.workloadClass) { seen.append(o.workloadClass) }
        return seen
    }
}
