import Foundation

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

/// Turns one row of logits into a token: penalties, temperature, top-k,
/// top-p, min-p, then greedy or seeded sampling. Logprobs are those of the
/// model's own distribution (before penalties and temperature), as vLLM
/// and SGLang report by default.
public enum Sampler {
    public static func sample(
        logits raw: ArraySlice<Float>, params: SamplingParams, promptTokens: [Int32], outputTokens: [Int32],
        rng: inout RandomSource
    ) -> (token: Int, logprob: TokenLogprob?) {
        var logits = Array(raw)
        applyPenalties(&logits, params: params, promptTokens: promptTokens, outputTokens: outputTokens)
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

    static func draw(_ logits: [Float], params: SamplingParams, rng: inout RandomSource) -> Int {
        // Candidates in descending logit order; ties broken by id for determinism.
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
        let mass = kept.reduce(0, +)
        var r = rng.nextUnit() * mass
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
            let ranked = logits.indices.sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }.prefix(top)
            best = ranked.map { (token: $0 - base, logprob: logits[$0] - logSum) }
        }
        return TokenLogprob(token: token, logprob: logits[base + token] - logSum, top: best)
    }
}
