@testable import Engine
import Foundation
import Testing

/// The sampler draws from the best candidates without sorting the whole
/// vocabulary; these pin it to the full-sort sampler it replaced.
struct PartialSelectionSamplerTests {
    static func randomLogits(_ count: Int, rng: inout RandomSource) -> [Float] {
        // Coarse values so ties happen.
        (0..<count).map { _ in Float(Int(rng.nextUnit() * 40)) / 4 - 5 }
    }

    @Test func theHeapYieldsTheFullSortOrder() {
        var rng = RandomSource(seed: 5)
        for _ in 0..<50 {
            let values = Self.randomLogits(Int(rng.nextUnit() * 300) + 1, rng: &rng)
            var heap = DescendingIndexHeap(values)
            var popped: [Int] = []
            while let i = heap.pop() { popped.append(i) }
            #expect(popped == values.indices.sorted { values[$0] > values[$1] || (values[$0] == values[$1] && $0 < $1) })
        }
    }

    /// With top-k the candidates and their sums are those of the full sort: the same token for the same draw.
    @Test(arguments: [(1.0, 1.0, 0.0), (0.7, 0.9, 0.0), (1.3, 1.0, 0.1), (0.5, 0.8, 0.05)] as [(Float, Float, Float)])
    func topKDrawsMatchTheFullSort(temperature: Float, topP: Float, minP: Float) {
        var data = RandomSource(seed: 11)
        for trial in 0..<300 {
            let logits = Self.randomLogits(500, rng: &data)
            var params = SamplingParams()
            params.temperature = temperature
            params.topP = topP
            params.minP = minP
            params.topK = 2 + trial % 60
            var a = RandomSource(seed: UInt64(trial)), b = a
            #expect(Sampler.draw(logits, params: params, rng: &a) == Sampler.fullSortDraw(logits, params: params, rng: &b))
        }
    }

    /// Without top-k the softmax sums in another order: the same token except at float-rounding edges, never outside the nucleus.
    @Test(arguments: [(1.0, 0.9, 0.0), (0.8, 1.0, 0.05), (1.0, 0.5, 0.02)] as [(Float, Float, Float)])
    func topPAndMinPDrawsMatchTheFullSort(temperature: Float, topP: Float, minP: Float) {
        var data = RandomSource(seed: 13)
        var same = 0
        let trials = 400
        for trial in 0..<trials {
            let logits = Self.randomLogits(2000, rng: &data)
            var params = SamplingParams()
            params.temperature = temperature
            params.topP = topP
            params.minP = minP
            var a = RandomSource(seed: UInt64(trial)), b = a
            let token = Sampler.draw(logits, params: params, rng: &a)
            if token == Sampler.fullSortDraw(logits, params: params, rng: &b) { same += 1 }
            // Every drawn token is inside the nucleus the full sort computes (generous rounding margin).
            let sorted = logits.sorted(by: >)
            #expect(logits[token] >= sorted[min(sorted.count - 1, Int(Float(sorted.count) * topP))] - 1e-3 || minP > 0)
        }
        #expect(same >= trials * 99 / 100, "only \(same) of \(trials) draws agree")
    }

    /// Plain temperature sampling walks tokens in id order: the same distribution, other draws.
    @Test func plainTemperatureSamplingHasTheSoftmaxDistribution() {
        let logits: [Float] = [2, 1, 0.5, 0, -1, 3]
        var params = SamplingParams()
        params.temperature = 0.8
        var rng = RandomSource(seed: 17)
        var counts = [Int](repeating: 0, count: logits.count)
        let draws = 40_000
        for _ in 0..<draws { counts[Sampler.draw(logits, params: params, rng: &rng)] += 1 }
        let weights = logits.map { Foundation.exp($0 / 0.8) }
        let total = weights.reduce(0, +)
        for (i, w) in weights.enumerated() {
            let expected = Double(w / total) * Double(draws)
            #expect(abs(Double(counts[i]) - expected) < 5 * expected.squareRoot() + 5, "token \(i): \(counts[i]) vs \(expected)")
        }
    }

    @Test func topLogprobsComeBestFirst() {
        let logits: [Float] = [0.1, 3, 3, -2, 1, 0.5]
        let result = Sampler.logprobs(of: logits[...], token: 4, top: 3)
        #expect(result.top.map(\.token) == [1, 2, 4])
        #expect(result.token == 4)
    }
}
