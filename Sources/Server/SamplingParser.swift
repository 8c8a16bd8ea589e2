import ByteExactJSON
import Engine
import Foundation

/// Reads sampling fields from request bodies into `SamplingParams`, with
/// 400s that name the field. OpenAI and SGLang spell most fields alike.
enum SamplingParser {
    /// Fields of features PDServe does not have, each with the values that ask
    /// for nothing — what a client or router such as smg fills in by default
    /// (`null`, `false`, `{"type": "text"}`). Those pass; any other value is
    /// refused by name, never ignored.
    static let unsupported: [String: @Sendable (Any) -> Bool] = {
        let off: @Sendable (Any) -> Bool = { value in
            value is NSNull || JSONScalar.bool(value) == false || (value as? [Any])?.isEmpty == true
                || (value as? [String: Any])?.isEmpty == true
        }
        var table: [String: @Sendable (Any) -> Bool] = [:]
        for field in ["ebnf", "structural_tag", "stop_regex", "guided_grammar", "lora_path", "lora_id", "image_data", "audio_data", "video_data",
                      "input_embeds", "custom_logit_processor", "custom_params", "return_hidden_states", "session_params",
                      "token_ids_logprob", "stream_interval", "continue_final_message", "reasoning_effort", "modalities",
                      "audio", "prediction", "functions", "function_call", "background", "return_bytes", "return_entropy"] {
            table[field] = off
        }
        // SGLang's default; fast tokenizers ignore it as PDServe does.
        table["spaces_between_special_tokens"] = { value in value is NSNull || JSONScalar.bool(value) == true }
        return table
    }()

    /// Fields that change only logging or reasoning parsing, which PDServe has
    /// none of: any boolean is accepted (smg sends them on every request).
    static let noEffectFlags: Set<String> = ["log_metrics", "no_logs", "separate_reasoning", "stream_reasoning"]

    static func rejectUnsupported(_ body: JSONBody) throws(APIError) {
        for (field, harmless) in unsupported.sorted(by: { $0.key < $1.key }) {
            if let value = body.fields[field], !harmless(value) {
                throw .invalid("'\(body.path)\(field)' is not supported by this server.", param: body.path + field)
            }
        }
        for field in noEffectFlags.sorted() {
            if let value = body.fields[field], !(value is NSNull), JSONScalar.bool(value) == nil {
                throw .invalid("'\(body.path)\(field)' must be true or false.", param: body.path + field)
            }
        }
    }

    /// Every field `rejectUnsupported` judges.
    static let judgedFields = Set(unsupported.keys).union(noEffectFlags)

    /// Sampling fields OpenAI bodies and SGLang's `sampling_params` share.
    static let commonFields: Set<String> = [
        "temperature", "top_p", "top_k", "min_p", "repetition_penalty", "frequency_penalty", "presence_penalty", "seed",
        "stop", "stop_token_ids", "ignore_eos", "skip_special_tokens", "no_stop_trim", "logit_bias",
    ]
    /// SGLang's `sampling_params` object.
    static let nativeFields = commonFields.union(["max_new_tokens", "min_new_tokens", "n"]).union(judgedFields).union(ConstraintFields.native)
    /// What a PD router adds to any body.
    static let routingFields: Set<String> = ["rid", "bootstrap_host", "bootstrap_port", "bootstrap_room"]
    /// OpenAI completions and chat bodies alike (with vLLM's and SGLang's extensions).
    static let openAIFields = commonFields.union(routingFields).union(judgedFields).union(ConstraintFields.openAI)
        .union(["model", "max_tokens", "max_completion_tokens", "min_tokens", "n", "stream", "stream_options", "user", PriorityField.name,
                 OpenAIFormat.returnPhasesField])
    static let completionsFields = openAIFields.union(["prompt", "logprobs", "echo", "suffix", "best_of"])
    static let chatFields = openAIFields.union([
        "messages", "logprobs", "top_logprobs", "tools", "tool_choice", "parallel_tool_calls", "add_generation_prompt",
        "chat_template_kwargs",
    ])

    /// Fields shared by OpenAI bodies and SGLang's `sampling_params`.
    static func common(_ body: JSONBody, into p: inout SamplingParams) throws(APIError) {
        if let v = try body.number("temperature") { p.temperature = Float(v) }
        if let v = try body.number("top_p") { p.topP = Float(v) }
        if let v = try body.int("top_k", in: RequestBounds.topK) { p.topK = v == 0 ? -1 : v }
        if let v = try body.number("min_p") { p.minP = Float(v) }
        if let v = try body.number("repetition_penalty") { p.repetitionPenalty = Float(v) }
        if let v = try body.number("frequency_penalty") { p.frequencyPenalty = Float(v) }
        if let v = try body.number("presence_penalty") { p.presencePenalty = Float(v) }
        if let v = try body.int("seed", in: RequestBounds.seed) { p.seed = UInt64(bitPattern: Int64(v)) }
        if let v = try body.strings("stop") { p.stopStrings = v }
        if let v = try body.integers("stop_token_ids", in: RequestBounds.tokenID) { p.stopTokenIds = v }
        if let v = try body.bool("ignore_eos") { p.ignoreEOS = v }
        if let v = try body.bool("skip_special_tokens") { p.skipSpecialTokens = v }
        if let v = try body.bool("no_stop_trim") { p.noStopTrim = v }
        if let bias = try body.object("logit_bias") {
            for (key, value) in bias.fields {
                guard let token = Int(key), let number = JSONScalar.number(value) else {
                    throw .invalid("'\(body.path)logit_bias' maps token ids (as strings) to numbers; '\(key)' does not.", param: body.path + "logit_bias")
                }
                p.logitBias[token] = Float(number)
            }
        }
        try rejectUnsupported(body)
    }

    /// An OpenAI completions or chat body. Returns the params and `n`.
    static func openAI(_ body: JSONBody, defaultMaxTokens: Int, chat: Bool) throws(APIError) -> (SamplingParams, Int) {
        var p = SamplingParams()
        if let v = try body.int("max_completion_tokens", in: RequestBounds.tokenCount) {
            p.maxNewTokens = v
        } else if let v = try body.int("max_tokens", in: RequestBounds.tokenCount) {
            p.maxNewTokens = v
        } else {
            p.maxNewTokens = defaultMaxTokens
        }
        if let v = try body.int("min_tokens", in: RequestBounds.tokenCount) { p.minNewTokens = v }
        // Read only by the handlers that stream, or by nothing: checked here so a wrong shape is never let through.
        _ = try OpenAIFormat.streamIncludesUsage(body)
        _ = try body.string("user")
        if chat { _ = try body.object("chat_template_kwargs") }
        try common(body, into: &p)
        if chat {
            if try body.bool("logprobs") == true {
                p.returnLogprobs = true
                p.topLogprobs = try body.int("top_logprobs", in: RequestBounds.topLogprobs) ?? 0
            } else if body.has("top_logprobs") {
                throw .invalid("'top_logprobs' needs 'logprobs': true.", param: "top_logprobs")
            }
        } else if let flag = body.fields["logprobs"], JSONScalar.bool(flag) == false {
            // Clients that mean "none" send false as often as null.
        } else if let k = try body.int("logprobs", in: RequestBounds.topLogprobs) {
            // A count of alternatives here, unlike chat's boolean: `true` is refused, not read as 0.
            p.returnLogprobs = true
            p.topLogprobs = k
        }
        let n = try body.int("n", in: RequestBounds.samples) ?? 1
        try validate(p, minName: "min_tokens", maxName: body.has("max_completion_tokens") ? "max_completion_tokens" : "max_tokens")
        return (p, n)
    }

    /// SGLang's `sampling_params` object.
    static func native(_ body: JSONBody?) throws(APIError) -> (SamplingParams, Int) {
        var p = SamplingParams()
        guard let body else { return (p, 1) }
        try body.rejectUnknown(allowed: nativeFields)
        if let v = try body.int("max_new_tokens", in: RequestBounds.tokenCount) { p.maxNewTokens = v }
        if let v = try body.int("min_new_tokens", in: RequestBounds.tokenCount) { p.minNewTokens = v }
        try common(body, into: &p)
        let n = try body.int("n", in: RequestBounds.samples) ?? 1
        try validate(p)
        return (p, n)
    }

    /// `minName`/`maxName`: how the request spelled the two counts (OpenAI's `min_tokens`, `max_tokens`).
    static func validate(_ p: SamplingParams, minName: String = "min_new_tokens", maxName: String = "max_new_tokens") throws(APIError) {
        do { try p.validate() } catch { throw .invalid(error.message) }
        // Checked here, not by the engine: a PD prefill lowers max_new_tokens to 1 for its half.
        guard p.minNewTokens <= p.maxNewTokens else {
            throw .invalid("\(minName) (\(p.minNewTokens)) must not exceed \(maxName) (\(p.maxNewTokens)).", param: minName)
        }
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
