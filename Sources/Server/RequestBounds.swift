import Engine

/// The range of every integer a client may send, in one place. Each is
/// checked where the field is parsed (`JSONBody.int(_:in:)`), so a value
/// near 2^63 is a 400 naming its field instead of an overflow later on.
/// Limits that depend on the model (vocabulary, context length, KV pool)
/// are the engine's to check.
enum RequestBounds {
    /// Token counts: max/min new tokens, however an API spells them.
    static let tokenCount = 0...SamplingParams.maxTokenCount
    /// Token ids, in prompts and `stop_token_ids`; the engine checks the vocabulary.
    static let tokenID = 0...SamplingParams.maxTokenID
    /// Samples per prompt (`n`, `best_of`).
    static let samples = 1...64
    /// Alternatives per position (`top_logprobs`, `top_logprobs_num`, completions `logprobs`).
    static let topLogprobs = 0...SamplingParams.maxTopLogprobs
    /// `top_k`: -1 or 0 disable it.
    static let topK = -1...Int(Int32.max)
    /// `logprob_start_len`: -1 (SGLang's default, none) or a prompt offset.
    static let promptOffset = -1...SamplingParams.maxTokenCount
    /// `priority`, either way round.
    static let priority = Int(Int32.min)...Int(Int32.max)
    /// `seed`: any 64-bit integer.
    static let seed = Int.min...Int.max
    /// Profiler steps (`start_step`, `num_steps`).
    static let steps = 0...Int(Int32.max)
}
