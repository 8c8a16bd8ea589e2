import Foundation
import Grammar

/// The log-probability of one token at one position, with the most likely alternatives.
public struct TokenLogprob: Sendable, Equatable {
    public var token: Int
    public var logprob: Float
    public var top: [(token: Int, logprob: Float)]

    public init(token: Int, logprob: Float, top: [(token: Int, logprob: Float)]) {
        self.token = token
        self.logprob = logprob
        self.top = top
    }

    public static func == (a: TokenLogprob, b: TokenLogprob) -> Bool {
        a.token == b.token && a.logprob == b.logprob && a.top.map(\.token) == b.top.map(\.token) && a.top.map(\.logprob) == b.top.map(\.logprob)
    }
}

/// The tokens a constraint lets the sampler draw: those in `mask`, and
/// `ends` (stop tokens, when the output so far is complete).
public struct AllowedTokens {
    public var mask: TokenMask
    public var ends: Set<Int32>

    public init(mask: TokenMask, ends: Set<Int32>) {
        self.mask = mask
        self.ends = ends
    }
}

/// Turns one row of logits into a token: penalties, logit bias, the
/// constraint's mask, held-back tokens, temperature, top-k, top-p, min-p,
/// then greedy or seeded sampling.
/// Logprobs are those of the model's own distribution (before penalties and
/// temperature), as vLLM and SGLang report by default.
public enum Sampler {
    /// `heldBack` tokens cannot be drawn (EOS and stop tokens before `min_new_tokens`);
    /// with `allowed`, only those can (the caller makes sure one is left).
    public static func sample(
        logits raw: ArraySlice<Float>, params: SamplingParams, promptTokens: [Int32], outputTokens: [Int32],
        heldBack: Set<Int32> = [], allowed: AllowedTokens? = nil, rng: inout RandomSource
    ) -> (token: Int, logprob: TokenLogprob?) {
        var logits = Array(raw)
        applyPenalties(&logits, params: params, promptTokens: promptTokens, outputTokens: outputTokens)
        for (token, bias) in params.logitBias where token < logits.count { logits[token] += bias }
        if let allowed {
            let ends = allowed.ends.filter { Int($0) < logits.count }.map { (Int($0), logits[Int($0)]) }
            allowed.mask.mask(&logits)
            for (token, logit) in ends { logits[token] = logit }
        }
        for token in heldBack where Int(token) < logits.count { logits[Int(token)] = -.infinity }
        let token = params.isGreedy ? argmax(logits) : draw(logits, params: params, rng: &rng)
        let logprob = params.returnLogprobs || params.topLogprobs > 0
            ? logprobs(of: raw, token: token, top: params.topLogprobs) : nil
        return (token, logprob)
    }

    static func applyPenalties(_ logits: inout [Float], params: SamplingParams, promptTokens: [Int32], outputTokens: [Int32]) {
        if params.repetitionPenalty != 1 {
            var seen = Set<Int32>(promptTokens)
            seen.formUnion(outputTokens)
            let p = params.repetitionPenalty
            for t in seen where Int(t) < logits.count {
                let v = logits[Int(t)]
                logits[Int(t)] = v < 0 ? v * p : v / p
            }
        }
        if params.frequencyPenalty != 0 || params.presencePenalty != 0 {
            var counts: [Int32: Int] = [:]
            for t in outputTokens { counts[t, default: 0] += 1 }
            for (t, n) in counts where Int(t) < logits.count {
                logits[Int(t)] -= params.frequencyPenalty * Float(n) + params.presencePenalty
            }
        }
    }

    static func argmax(_ x: [Float]) -> Int {
        var best = 0
        for i in 1..<x.count where x[i] > x[best] { best = i }
        return best
    }

    /// Samples from the temperature-scaled distribution restricted by top-k,
    /// top-p and min-p. Only the candidates those filters look at are put in
    /// order (a heap yields them best first), so a 150k vocabulary is not
    /// sorted per token. With top-k, top-p or min-p the candidates are walked
    /// best first (ties by id), as the full sort did; with none of them every
    /// token is a candidate and is walked in id order: the same distribution.
    public static func draw(_ logits: [Float], params: SamplingParams, rng: inout RandomSource) -> Int {
        let scaled = logits.map { $0 / params.temperature }
        let byRank = params.topP < 1 || params.minP > 0
        if params.topK > 0 && params.topK < scaled.count {
            var heap = DescendingIndexHeap(scaled)
            let candidates = (0..<params.topK).compactMap { _ in heap.pop() }
            let maxLogit = scaled[candidates[0]]
            let weights = candidates.map { Foundation.exp(scaled[$0] - maxLogit) }
            let total = weights.reduce(0, +)
            var next = 0
            return pick(params: params, rng: &rng, total: total) {
                guard next < candidates.count else { return nil }
                defer { next += 1 }
                return (candidates[next], weights[next])
            }
        }
        // Every token is a candidate: one pass for the softmax's weights and sum.
        let maxLogit = scaled.max() ?? 0
        var weights = [Float](repeating: 0, count: scaled.count)
        var total: Float = 0
        for i in scaled.indices {
            weights[i] = Foundation.exp(scaled[i] - maxLogit)
            total += weights[i]
        }
        if byRank {
            var heap = DescendingIndexHeap(scaled)
            return pick(params: params, rng: &rng, total: total) { heap.pop().map { ($0, weights[$0]) } }
        }
        var r = rng.nextUnit() * total
        for i in weights.indices {
            r -= weights[i]
            if r < 0 { return i }
        }
        return weights.indices.last { weights[$0] > 0 } ?? 0
    }

    /// Walks candidates best first (`next` yields token and softmax weight),
    /// keeps them until top-p's mass is reached or min-p's threshold (relative
    /// to the best) is crossed, and draws one of those kept.
    private static func pick(params: SamplingParams, rng: inout RandomSource, total: Float,
                             next: () -> (token: Int, weight: Float)?) -> Int {
        var kept: [(token: Int, p: Float)] = []
        var threshold: Float = 0
        var cumulative: Float = 0
        while let (token, weight) = next() {
            let p = weight / total
            if kept.isEmpty {
                threshold = params.minP * p
            } else if params.minP > 0, p < threshold {
                break
            }
            kept.append((token, p))
            cumulative += p
            if params.topP < 1, cumulative >= params.topP { break }
        }
        var r = rng.nextUnit() * kept.reduce(Float(0)) { $0 + $1.p }
        for candidate in kept {
            r -= candidate.p
            if r < 0 { return candidate.token }
        }
        return kept[kept.count - 1].token
    }

    /// The sampler before partial selection — sort the whole vocabulary, then
    /// filter — kept as the baseline `draw` is tested and benchmarked against.
    public static func fullSortDraw(_ logits: [Float], params: SamplingParams, rng: inout RandomSource) -> Int {
        var order = Array(0..<logits.count)
        order.sort { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        if params.topK > 0 { order = Array(order.prefix(params.topK)) }
        let maxLogit = logits[order[0]] / params.temperature
        var probs = order.map { Foundation.exp(logits[$0] / params.temperature - maxLogit) }
        let total = probs.reduce(0, +)
        probs = probs.map { $0 / total }
        var keep = probs.count
        if params.topP < 1 {
            var cumulative: Float = 0
            for (i, p) in probs.enumerated() {
                cumulative += p
                if cumulative >= params.topP { keep = i + 1; break }
            }
        }
        if params.minP > 0 {
            let threshold = params.minP * probs[0]
            keep = min(keep, max(1, probs.prefix(keep).prefix(while: { $0 >= threshold }).count))
        }
        let kept = probs.prefix(keep)
        var r = rng.nextUnit() * kept.reduce(0, +)
        for (i, p) in kept.enumerated() {
            r -= p
            if r < 0 { return order[i] }
        }
        return order[keep - 1]
    }

    /// log_softmax of the raw logits at `token`, plus the `top` best tokens.
    public static func logprobs(of logits: ArraySlice<Float>, token: Int, top: Int) -> TokenLogprob {
        let maxLogit = logits.max() ?? 0
        let logSum = Foundation.log(logits.reduce(Float(0)) { $0 + Foundation.exp($1 - maxLogit) }) + maxLogit
        let base = logits.startIndex
        var best: [(token: Int, logprob: Float)] = []
        if top > 0 {
            var ranked = DescendingIndexHeap(Array(logits))
            best = (0..<min(top, logits.count)).compactMap { _ in ranked.pop() }.map { (token: $0, logprob: logits[base + $0] - logSum) }
        }
        return TokenLogprob(token: token, logprob: logits[base + token] - logSum, top: best)
    }
}
