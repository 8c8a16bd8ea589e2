import Engine

/// Reads sampling fields from request bodies into `SamplingParams`, with
/// 400s that name the field. OpenAI and SGLang spell most fields alike.
enum SamplingParser {
    /// Fields whose feature PDServe does not have: refused, never ignored.
    static let unsupported = ["json_schema", "regex", "ebnf", "structural_tag", "response_format", "guided_json", "guided_regex", "guided_grammar", "guided_choice", "tools", "tool_choice", "lora_path", "image_data", "audio_data"]

    static func rejectUnsupported(_ body: JSONBody) throws(APIError) {
        for field in unsupported where body.has(field) {
            // response_format text is the default and harmless.
            if field == "response_format", let format = body.fields[field] as? [String: Any], format["type"] as? String == "text" { continue }
            if field == "tools" || field == "tool_choice" { continue } // handled by chat templates
            throw .invalid("'\(body.path)\(field)' is not supported by this server.", param: body.path + field)
        }
    }

    /// Fields shared by OpenAI bodies and SGLang's `sampling_params`.
    static func common(_ body: JSONBody, into p: inout SamplingParams) throws(APIError) {
        if let v = try body.number("temperature") { p.temperature = Float(v) }
        if let v = try body.number("top_p") { p.topP = Float(v) }
        if let v = try body.int("top_k") { p.topK = v == 0 ? -1 : v }
        if let v = try body.number("min_p") { p.minP = Float(v) }
        if let v = try body.number("repetition_penalty") { p.repetitionPenalty = Float(v) }
        if let v = try body.number("frequency_penalty") { p.frequencyPenalty = Float(v) }
        if let v = try body.number("presence_penalty") { p.presencePenalty = Float(v) }
        if let v = try body.int("seed") { p.seed = UInt64(bitPattern: Int64(v)) }
        if let v = try body.strings("stop") { p.stopStrings = v }
        if let v = try body.integers("stop_token_ids") { p.stopTokenIds = v }
        if let v = try body.bool("ignore_eos") { p.ignoreEOS = v }
        if let v = try body.bool("skip_special_tokens") { p.skipSpecialTokens = v }
        try rejectUnsupported(body)
    }

    /// An OpenAI completions or chat body. Returns the params and `n`.
    static func openAI(_ body: JSONBody, defaultMaxTokens: Int, chat: Bool) throws(APIError) -> (SamplingParams, Int) {
        var p = SamplingParams()
        if let v = try body.int("max_completion_tokens") {
            p.maxNewTokens = v
        } else if let v = try body.int("max_tokens") {
            p.maxNewTokens = v
        } else {
            p.maxNewTokens = defaultMaxTokens
        }
        try common(body, into: &p)
        if chat {
            if try body.bool("logprobs") == true {
                p.returnLogprobs = true
                p.topLogprobs = try body.int("top_logprobs") ?? 0
            } else if body.has("top_logprobs") {
                throw .invalid("'top_logprobs' needs 'logprobs': true.", param: "top_logprobs")
            }
        } else if let k = try body.intOrBool("logprobs") {
            p.returnLogprobs = true
            p.topLogprobs = k
        }
        let n = try body.int("n") ?? 1
        guard (1...64).contains(n) else { throw .invalid("'n' must be between 1 and 64, got \(n).", param: "n") }
        try validate(p)
        return (p, n)
    }

    /// SGLang's `sampling_params` object.
    static func native(_ body: JSONBody?) throws(APIError) -> (SamplingParams, Int) {
        var p = SamplingParams()
        guard let body else { return (p, 1) }
        if let v = try body.int("max_new_tokens") { p.maxNewTokens = v }
        try common(body, into: &p)
        let n = try body.int("n") ?? 1
        guard (1...64).contains(n) else { throw .invalid("'sampling_params.n' must be between 1 and 64, got \(n).", param: "sampling_params.n") }
        try validate(p)
        return (p, n)
    }

    static func validate(_ p: SamplingParams) throws(APIError) {
        do { try p.validate() } catch { throw .invalid(error.message) }
    }

    /// Copies of `params` for `n` samples; seeded requests get distinct, reproducible seeds.
    static func replicas(_ params: SamplingParams, n: Int) -> [SamplingParams] {
        (0..<n).map { i in
            var p = params
            if let seed = params.seed { p.seed = seed &+ UInt64(i) }
            return p
        }
    }
}
