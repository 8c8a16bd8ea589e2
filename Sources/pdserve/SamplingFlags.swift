import ArgumentParser
import Engine

/// Per-request sampling flags for offline generation (SGLang's sampling_params names).
struct SamplingFlags: ParsableArguments {
    @Option(name: .customLong("max-new-tokens"), help: "Most tokens to generate.")
    var maxNewTokens: Int = 64
    @Option(help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = 0
    @Option(name: .customLong("top-p"), help: "Nucleus sampling: keep the most likely tokens whose probabilities sum to this.")
    var topP: Float = 1
    @Option(name: .customLong("top-k"), help: "Keep only the k most likely tokens (-1: all).")
    var topK: Int = -1
    @Option(name: .customLong("min-p"), help: "Drop tokens less likely than this fraction of the most likely one.")
    var minP: Float = 0
    @Option(name: .customLong("repetition-penalty"), help: "Divide logits of tokens already seen by this (>1 discourages repeats).")
    var repetitionPenalty: Float = 1
    @Option(name: .customLong("frequency-penalty"), help: "Subtract this times a token's count in the output.")
    var frequencyPenalty: Float = 0
    @Option(name: .customLong("presence-penalty"), help: "Subtract this from tokens already in the output.")
    var presencePenalty: Float = 0
    @Option(help: "Random seed, for reproducible sampling.")
    var seed: UInt64?
    @Option(name: .customLong("stop"), help: "Stop when this string appears (repeatable).")
    var stop: [String] = []
    @Option(name: .customLong("stop-token-id"), help: "Stop at this token id (repeatable).")
    var stopTokenIds: [Int] = []
    @Flag(name: .customLong("ignore-eos"), help: "Keep generating past end-of-sequence tokens.")
    var ignoreEOS = false

    var params: SamplingParams {
        var p = SamplingParams()
        p.maxNewTokens = maxNewTokens
        p.temperature = temperature
        p.topP = topP
        p.topK = topK
        p.minP = minP
        p.repetitionPenalty = repetitionPenalty
        p.frequencyPenalty = frequencyPenalty
        p.presencePenalty = presencePenalty
        p.seed = seed
        p.stopStrings = stop
        p.stopTokenIds = stopTokenIds
        p.ignoreEOS = ignoreEOS
        return p
    }
}
