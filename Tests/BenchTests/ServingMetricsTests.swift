import Testing
@testable import Bench

/// The pieces of `pdserve bench serving` that turn raw timings into a
/// report: percentiles, goodput objectives, SSE framing, arrival schedules.
@Suite struct ServingMetricsTests {
    @Test func percentilesInterpolateLikeNumpy() {
        // numpy.percentile([1, 2, 3, 4], [50, 90, 99]) = 2.5, 3.7, 3.97
        let s = LatencySummary(seconds: [0.004, 0.001, 0.003, 0.002])
        #expect(abs(s.median - 2.5) < 1e-9)
        #expect(abs(s.p90 - 3.7) < 1e-9)
        #expect(abs(s.p99 - 3.97) < 1e-9)
        #expect(abs(s.mean - 2.5) < 1e-9)
        #expect(s.max == 4)
    }

    @Test func emptySummaryIsZero() {
        #expect(LatencySummary(seconds: []).p99 == 0)
    }

    @Test func goodputCountsRequestsMeetingEveryObjectiveOfTheirClass() throws {
        let objectives = try GoodputObjectives(parsing: ["ttft:100", "tpot:20", "doc.ttft:1000"])
        func outcome(_ cls: String, ttft: Double, latency: Double, tokens: Int) -> ServingRequestOutcome {
            var o = ServingRequestOutcome(workloadClass: cls, promptLength: 10, requestedOutputLength: tokens)
            o.success = true
            o.ttft = ttft
            o.latency = latency
            o.outputLength = tokens
            return o
        }
        #expect(objectives.isMet(by: outcome("chat", ttft: 0.05, latency: 0.05 + 9 * 0.01, tokens: 10)))
        #expect(!objectives.isMet(by: outcome("chat", ttft: 0.5, latency: 0.6, tokens: 10)))      // TTFT missed
        #expect(!objectives.isMet(by: outcome("chat", ttft: 0.05, latency: 0.05 + 9 * 0.03, tokens: 10)))  // TPOT missed
        #expect(objectives.isMet(by: outcome("doc", ttft: 0.5, latency: 0.51, tokens: 2)))        // doc's own TTFT, shared TPOT
        var failed = outcome("chat", ttft: 0.01, latency: 0.02, tokens: 2)
        failed.success = false
        #expect(!objectives.isMet(by: failed))
        let metrics = ServingMetrics(outcomes: [outcome("chat", ttft: 0.05, latency: 0.06, tokens: 2), outcome("chat", ttft: 0.5, latency: 0.6, tokens: 2)],
                                     durationSeconds: 2, objectives: objectives)
        #expect(metrics.goodRequests == 1)
        #expect(metrics.goodput == 0.5)
    }

    @Test func goodputRejectsUnknownObjectives() {
        #expect(throws: ServingBenchmarkError.self) { try GoodputObjectives(parsing: ["latency:5"]) }
        #expect(throws: ServingBenchmarkError.self) { try GoodputObjectives(parsing: ["ttft=5"]) }
    }

    @Test func sseSplitterJoinsPayloadsAcrossChunkBoundaries() {
        var splitter = SSEDataSplitter()
        #expect(splitter.feed(Array("data: {\"a\"".utf8)).isEmpty)
        let first = splitter.feed(Array(":1}\r\n\r\ndata: [DO".utf8))
        #expect(first == [Array("{\"a\":1}".utf8)])
        let second = splitter.feed(Array("NE]\n\n".utf8))
        #expect(second == [Array("[DONE]".utf8)])
    }

    @Test func poissonScheduleIsSeededAndHasTheRequestedRate() {
        let prompts = (0..<2000).map { _ in ServingPrompt(tokenIds: [1], text: "x", promptLength: 1, outputLength: 1, workloadClass: "all") }
        var a = SeededGenerator(seed: 7), b = SeededGenerator(seed: 7)
        let s1 = ServingSchedule.poisson(prompts, rate: 4, using: &a)
        let s2 = ServingSchedule.poisson(prompts, rate: 4, using: &b)
        #expect(s1.entries.map(\.offset) == s2.entries.map(\.offset))
        let observedRate = Double(prompts.count - 1) / s1.entries.last!.offset
        #expect(abs(observedRate - 4) < 0.4)
        var c = SeededGenerator(seed: 1)
        #expect(ServingSchedule.poisson(prompts, rate: .infinity, using: &c).entries.allSatisfy { $0.offset == 0 })
    }

    @Test func mergedSchedulesInterleaveByTime() {
        func schedule(_ cls: String, rate: Double, seed: UInt64) -> ServingSchedule {
            var rng = SeededGenerator(seed: seed)
            let prompts = (0..<50).map { _ in ServingPrompt(tokenIds: nil, text: "", promptLength: 1, outputLength: 1, workloadClass: cls) }
            return .poisson(prompts, rate: rate, using: &rng)
        }
        let merged = ServingSchedule.merged([schedule("chat", rate: 2, seed: 1), schedule("doc", rate: 0.6, seed: 2)])
        #expect(merged.entries.count == 100)
        #expect(zip(merged.entries, merged.entries.dropFirst()).allSatisfy { $0.offset <= $1.offset })
        #expect(Set(merged.entries.prefix(30).map(\.prompt.workloadClass)).count == 2)
    }
}
