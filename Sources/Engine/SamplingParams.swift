/// How one request chooses its tokens and when it stops. Names and defaults
/// follow SGLang's `sampling_params`.
public struct SamplingParams: Sendable, Equatable {
    public var maxNewTokens: Int = 128
    /// 0 means greedy.
    public var temperature: Float = 1.0
    public var topP: Float = 1.0
    /// -1 (or 0) disables top-k.
    public var topK: Int = -1
    public var minP: Float = 0
    /// HF-style: >1 discourages any token already in the prompt or output.
    public var repetitionPenalty: Float = 1.0
    /// OpenAI-style, on output tokens: subtract `frequency × count`.
    public var frequencyPenalty: Float = 0
    /// OpenAI-style, on output tokens: subtract `presence` once a token appeared.
    public var presencePenalty: Float = 0
    /// Same seed, same prompt, same params → same tokens.
    public var seed: UInt64?
    public var stopTokenIds: [Int] = []
    public var stopStrings: [String] = []
    public var ignoreEOS = false
    /// Until this many tokens are out, EOS and stop tokens cannot be drawn and
    /// stop strings do not end the request (SGLang's `min_new_tokens`, vLLM's `min_tokens`).
    public var minNewTokens = 0
    /// Added to these tokens' logits before sampling (OpenAI's `logit_bias`);
    /// the reported logprobs stay the model's own.
    public var logitBias: [Int: Float] = [:]
    /// Keep the matched stop string, or the stop token's text, in the output (SGLang's `no_stop_trim`).
    public var noStopTrim = false
    public var skipSpecialTokens = true
    /// Return the logprob of each chosen token.
    public var returnLogprobs = false
    /// How many most likely alternatives to return per position.
    public var topLogprobs = 0
    /// Return logprobs of prompt tokens from this index on (SGLang's
    /// `logprob_start_len`); nil returns none.
    public var inputLogprobStart: Int?

    public init() {}

    public static let maxStopStrings = 16
    public static let maxStopStringLength = 256
    public static let maxTopLogprobs = 20
    /// The most tokens a request may ask for (and the largest offset into one):
    /// far beyond any context length, small enough that sums of them cannot overflow.
    public static let maxTokenCount = Int(Int32.max)
    /// The largest token id a request may name (vocabularies are far smaller; the engine checks the real one).
    public static let maxTokenID = Int(Int32.max)

    public static let maxLogitBiasEntries = 1024

    /// Temperatures below this are greedy (as vLLM's sampling epsilon): dividing
    /// by 1e-38 overflows the logits and would draw an arbitrary token.
    public static let greedyTemperature: Float = 1e-5

    public var isGreedy: Bool { temperature < Self.greedyTemperature || topK == 1 }

    /// Rejects values no sampler can honour, naming the field.
    public func validate() throws(InvalidRequest) {
        func fail(_ message: String) -> InvalidRequest { InvalidRequest(message) }
        guard (0...Self.maxTokenCount).contains(maxNewTokens) else { throw fail("max_new_tokens must be in [0, \(Self.maxTokenCount)], got \(maxNewTokens)") }
        guard temperature.isFinite, temperature >= 0, temperature <= 100 else { throw fail("temperature must be in [0, 100], got \(temperature)") }
        guard topP.isFinite, topP > 0, topP <= 1 else { throw fail("top_p must be in (0, 1], got \(topP)") }
        guard topK >= -1 else { throw fail("top_k must be -1 (disabled) or positive, got \(topK)") }
        guard minP.isFinite, minP >= 0, minP <= 1 else { throw fail("min_p must be in [0, 1], got \(minP)") }
        guard repetitionPenalty.isFinite, repetitionPenalty > 0, repetitionPenalty <= 10 else { throw fail("repetition_penalty must be in (0, 10], got \(repetitionPenalty)") }
        guard frequencyPenalty.isFinite, abs(frequencyPenalty) <= 2 else { throw fail("frequency_penalty must be in [-2, 2], got \(frequencyPenalty)") }
        guard presencePenalty.isFinite, abs(presencePenalty) <= 2 else { throw fail("presence_penalty must be in [-2, 2], got \(presencePenalty)") }
        guard stopStrings.count <= Self.maxStopStrings else { throw fail("at most \(Self.maxStopStrings) stop strings, got \(stopStrings.count)") }
        guard stopStrings.allSatisfy({ !$0.isEmpty && $0.utf8.count <= Self.maxStopStringLength }) else {
            throw fail("stop strings must be non-empty and at most \(Self.maxStopStringLength) bytes")
        }
        guard stopTokenIds.allSatisfy({ (0...Self.maxTokenID).contains($0) }) else { throw fail("stop_token_ids must be token ids in [0, \(Self.maxTokenID)]") }
        guard (0...Self.maxTokenCount).contains(minNewTokens) else { throw fail("min_new_tokens must be in [0, \(Self.maxTokenCount)], got \(minNewTokens)") }
        guard logitBias.count <= Self.maxLogitBiasEntries else { throw fail("logit_bias holds \(logitBias.count) entries; at most \(Self.maxLogitBiasEntries)") }
        for (token, bias) in logitBias {
            guard token >= 0 else { throw fail("logit_bias keys must be token ids >= 0, got \(token)") }
            guard bias.isFinite, abs(bias) <= 100 else { throw fail("logit_bias values must be in [-100, 100], got \(bias) for token \(token)") }
        }
        if let start = inputLogprobStart, !(0...Self.maxTokenCount).contains(start) { throw fail("logprob_start_len must be in [0, \(Self.maxTokenCount)], got \(start)") }
        guard topLogprobs >= 0, topLogprobs <= Self.maxTopLogprobs else { throw fail("top_logprobs must be in [0, \(Self.maxTopLogprobs)], got \(topLogprobs)") }
    }
}

/// A request the engine refuses, with a message for the client.
public struct InvalidRequest: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
