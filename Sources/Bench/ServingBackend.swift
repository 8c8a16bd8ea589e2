/// The HTTP API a benchmark run speaks, named as `sglang.bench_serving` and
/// `vllm bench serve` name them.
public enum ServingBackend: String, CaseIterable, Sendable {
    /// SGLang's native `POST /generate` with `input_ids`.
    case sglang
    /// OpenAI completions on an SGLang server.
    case sglangOAI = "sglang-oai"
    /// OpenAI chat completions on an SGLang server.
    case sglangOAIChat = "sglang-oai-chat"
    /// vLLM's name for OpenAI completions.
    case vllm
    /// OpenAI completions.
    case openai
    /// OpenAI chat completions.
    case openaiChat = "openai-chat"

    /// The shape of request and stream this backend uses.
    public enum API: Sendable { case generate, completions, chat }

    public var api: API {
        switch self {
        case .sglang: return .generate
        case .sglangOAI, .vllm, .openai: return .completions
        case .sglangOAIChat, .openaiChat: return .chat
        }
    }

    /// The request path, appended to the base URL.
    public var path: String {
        switch api {
        case .generate: return "/generate"
        case .completions: return "/v1/completions"
        case .chat: return "/v1/chat/completions"
        }
    }

    /// The JSON body for one prompt. Every backend asks for `ignore_eos` so
    /// each request generates exactly `outputLength` tokens. `sampling`
    /// (`--sampling-params`) replaces the greedy default field by field where
    /// each API keeps its sampling fields: inside `sampling_params` for
    /// `/generate`, at the top level for the OpenAI routes.
    public func body(for prompt: ServingPrompt, model: String?, stream: Bool, sampling: [String: Any] = [:]) -> [String: Any] {
        switch api {
        case .generate:
            let params: [String: Any] = ["max_new_tokens": prompt.outputLength, "temperature": 0.0, "ignore_eos": true]
            var body: [String: Any] = [
                "sampling_params": params.merging(sampling) { $1 },
                "stream": stream,
            ]
            if let ids = prompt.tokenIds { body["input_ids"] = ids } else { body["text"] = prompt.text }
            return body
        case .completions:
            var body: [String: Any] = [
                // Token ids keep the prompt length exact; PDServe, SGLang and vLLM accept them.
                "prompt": prompt.tokenIds.map { $0 as Any } ?? prompt.text,
                "max_tokens": prompt.outputLength, "temperature": 0.0, "ignore_eos": true, "stream": stream,
            ]
            if stream { body["stream_options"] = ["include_usage": true] }
            if let model { body["model"] = model }
            return body.merging(sampling) { $1 }
        case .chat:
            var body: [String: Any] = [
                "messages": [["role": "user", "content": prompt.text]],
                "max_tokens": prompt.outputLength, "temperature": 0.0, "ignore_eos": true, "stream": stream,
            ]
            if stream { body["stream_options"] = ["include_usage": true] }
            if let model { body["model"] = model }
            return body.merging(sampling) { $1 }
        }
    }
}
