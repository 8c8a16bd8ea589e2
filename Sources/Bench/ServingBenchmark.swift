import Foundation

/// Drives a serving benchmark: warm-up, then every request of a schedule
/// sent at its arrival time (open loop: a slow server does not slow the
/// arrivals down), optionally capped at `maxConcurrency` in flight, with a
/// progress line every few seconds.
public struct ServingBenchmark: Sendable {
    public let client: ServingClient
    public let options: ServingBenchmarkOptions

    public init(client: ServingClient, options: ServingBenchmarkOptions) {
        self.client = client
        self.options = options
    }

    /// Sends `prompts` concurrently and fails unless at least one succeeds:
    /// a server that cannot answer should stop the run before it is measured.
    public func warmUp(_ prompts: [ServingPrompt], log: @Sendable (String) -> Void) async throws {
        guard !prompts.isEmpty else { return }
        log("warming up with \(prompts.count) request(s)...")
        let outcomes = await withTaskGroup(of: ServingRequestOutcome.self) { group in
            for prompt in prompts { group.addTask { await client.send(prompt) } }
            return await group.reduce(into: []) { $0.append($1) }
        }
        if let failure = outcomes.first(where: { !$0.success }) {
            throw ServingBenchmarkError.server("warm-up request failed: \(failure.error ?? "unknown error")")
        }
    }

    public func run(_ schedule: ServingSchedule, log: @escaping @Sendable (String) -> Void) async -> ServingRunResult {
        let clock = ContinuousClock()
        let limiter = options.maxConcurrency.map { ConcurrencyLimiter(limit: $0) }
        let progress = ServingProgress()
        let total = schedule.entries.count
        let startedAt = Date()
        let start = clock.now
        let elapsed: @Sendable () -> Double = {
            let d = clock.now - start
            return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        }
        let interval = options.progressInterval
        let ticker = Task {
            // An infinite interval means no progress lines (and Duration cannot hold it).
            guard interval.isFinite else { return }
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(interval))
                if Task.isCancelled { break }
                log(String(format: "[%7.1fs] ", elapsed()) + (await progress.line(total: total)))
            }
        }
        let client = self.client
        var outcomes = await withTaskGroup(of: (Int, ServingRequestOutcome).self) { group in
            for (index, entry) in schedule.entries.enumerated() {
                let due = start + .nanoseconds(Int64(entry.offset * 1e9))
                if due > clock.now { try? await Task.sleep(until: due, clock: clock) }
                group.addTask {
                    await limiter?.acquire()
                    let sentAt = elapsed()
                    await progress.markSent()
                    var outcome = await client.send(entry.prompt)
                    await limiter?.release()
                    outcome.sentAt = sentAt
                    await progress.record(outcome)
                    return (index, outcome)
                }
            }
            var collected: [(Int, ServingRequestOutcome)] = []
            for await item in group { collected.append(item) }
            return collected
        }
        let duration = elapsed()
        ticker.cancel()
        log(String(format: "[%7.1fs] ", duration) + (await progress.line(total: total)))
        outcomes.sort { $0.0 < $1.0 }
        return ServingRunResult(outcomes: outcomes.map(\.1), durationSeconds: duration, startedAt: startedAt)
    }
}
