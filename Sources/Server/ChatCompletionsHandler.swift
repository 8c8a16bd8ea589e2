import ChatTemplates
import Engine
import Foundation
import Hummingbird
import Tokenization

/// `POST /v1/chat/completions` (OpenAI): messages rendered through the
/// model's Jinja chat template, then generated like a completion.
struct ChatCompletionsHandler: Sendable {
    let service: InferenceService
    /// Parsed once; a template that does not parse makes every chat request a clear 400.
    let template: Result<ChatTemplate, APIError>

    init(service: InferenceService) {
        self.service = service
        if let source = service.configuration.chatTemplate ?? service.tokenizer.chatTemplate {
            do {
                template = .success(try ChatTemplate(source: source))
            } catch {
                template = .failure(.invalid("The chat template cannot be rendered by this server: \(error)"))
            }
        } else {
            template = .failure(.invalid("This model has no chat template; start the server with --chat-template FILE or use /v1/completions."))
        }
    }

    func handle(_ request: Request, context: ServerRequestContext) async throws -> Response {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: service.configuration.maxRequestBodyBytes)
        } catch {
            throw APIError(.contentTooLarge, type: "invalid_request_error", "The request body exceeds \(service.configuration.maxRequestBodyBytes) bytes.")
        }
        let data = Data(buffer.readableBytesView)
        let body = try JSONBody(data: data)
        try RequestReader.checkModel(body, configuration: service.configuration)
        let prompt = try renderPrompt(body: body, data: data)
        let tokenizer = service.tokenizer
        let tokens = tokenizer.encode(prompt, addSpecialTokens: false)
        guard !tokens.isEmpty else { throw APIError.invalid("The rendered chat prompt is empty.", param: "messages") }
        let remaining = max(0, service.engine.contextLength - tokens.count)
        let (params, n) = try SamplingParser.openAI(body, defaultMaxTokens: remaining, chat: true)
        var inputs = SamplingParser.replicas(params, n: n).map { GenerateInput(id: OpenAIFormat.newID("chatcmpl"), promptTokens: tokens, params: $0) }
        try BootstrapFields.apply(body, mode: service.configuration.disaggregationMode, to: &inputs)
        try service.admit(inputs)
        let id = OpenAIFormat.newID("chatcmpl")
        let model = service.configuration.servedModelName
        let created = OpenAIFormat.now

        if try body.bool("stream") == true {
            let includeUsage = try body.object("stream_options")?.bool("include_usage") ?? false
            let updates = try await service.start(inputs, names: try RequestReader.names(body, for: inputs), channel: context.channel, logger: context.logger)
            let inputs = inputs
            return SSE.response { send in
                func chunk(_ choices: [[String: Any]]) -> [String: Any] {
                    ["id": id, "object": "chat.completion.chunk", "created": created, "model": model, "choices": choices]
                }
                for index in inputs.indices {
                    try await send(chunk([["index": index, "delta": ["role": "assistant", "content": ""], "logprobs": NSNull(), "finish_reason": NSNull()]]))
                }
                var totals = Array(repeating: Generation(), count: inputs.count)
                while let (index, update) = try await updates.next() {
                    totals[index].absorb(update)
                    guard !update.textDelta.isEmpty || update.finish != nil || !update.newLogprobs.isEmpty else { continue }
                    let delta: [String: Any] = update.textDelta.isEmpty ? [:] : ["content": update.textDelta]
                    var choice: [String: Any] = ["index": index, "delta": delta, "logprobs": NSNull(),
                                                 "finish_reason": OpenAIFormat.finishReason(update.finish)]
                    if params.returnLogprobs { choice["logprobs"] = ["content": OpenAIFormat.chatLogprobs(update.newLogprobs, tokenizer: tokenizer)] }
                    try await send(chunk([choice]))
                }
                if includeUsage {
                    var final = chunk([])
                    final["usage"] = OpenAIFormat.usage(prompt: tokens.count, completion: totals.map(\.completionTokens).reduce(0, +),
                                                        cached: totals.map(\.cachedTokens).reduce(0, +))
                    try await send(final)
                }
            }
        }

        let results = try await service.collect(inputs, names: try RequestReader.names(body, for: inputs), channel: context.channel, logger: context.logger)
        let choices = results.enumerated().map { index, result -> [String: Any] in
            [
                "index": index, "message": ["role": "assistant", "content": result.text],
                "logprobs": params.returnLogprobs ? ["content": OpenAIFormat.chatLogprobs(result.logprobs, tokenizer: tokenizer)] : NSNull(),
                "finish_reason": OpenAIFormat.finishReason(result.finish),
            ]
        }
        return JSON.response([
            "id": id, "object": "chat.completion", "created": created, "model": model, "choices": choices,
            "usage": OpenAIFormat.usage(prompt: tokens.count, completion: results.map(\.completionTokens).reduce(0, +),
                                        cached: results.map(\.cachedTokens).reduce(0, +)),
        ])
    }

    /// Renders `messages` (and `tools`, `chat_template_kwargs`) through the template.
    private func renderPrompt(body: JSONBody, data: Data) throws -> String {
        let template = try self.template.get()
        // Key order matters for tool schemas rendered with tojson, so the
        // template values come from an order-preserving parse.
        let ordered: TemplateValue
        do { ordered = try TemplateValue(jsonData: data) } catch { throw APIError.invalid("The request body is not valid JSON.") }
        guard case .array(let rawMessages)? = ordered["messages"], !rawMessages.isEmpty else {
            throw APIError.invalid("'messages' must be a non-empty array.", param: "messages")
        }
        var messages: [[String: TemplateValue]] = []
        for (i, raw) in rawMessages.enumerated() {
            guard case .object(let fields) = raw, case .string? = fields["role"] else {
                throw APIError.invalid("'messages[\(i)]' must be an object with a string 'role'.", param: "messages")
            }
            var message: [String: TemplateValue] = [:]
            for (key, value) in fields.pairs { message[key] = value }
            message["content"] = try flattenContent(fields["content"], index: i)
            messages.append(message)
        }
        let tokenizer = service.tokenizer
        var variables: [String: TemplateValue] = [:]
        if let bos = tokenizer.bosTokenId.flatMap(tokenizer.token(forId:)) { variables["bos_token"] = .string(bos) }
        if let eos = tokenizer.eosTokenIds.first.flatMap(tokenizer.token(forId:)) { variables["eos_token"] = .string(eos) }
        if let tools = ordered["tools"], tools != .null { variables["tools"] = tools }
        if case .object(let kwargs)? = ordered["chat_template_kwargs"] {
            for (key, value) in kwargs.pairs { variables[key] = value }
        }
        let addGenerationPrompt = try body.bool("add_generation_prompt") ?? true
        do {
            return try template.render(messages: messages, addGenerationPrompt: addGenerationPrompt, variables: variables)
        } catch {
            throw APIError.invalid("The chat template could not render these messages: \(error)", param: "messages")
        }
    }

    /// OpenAI content parts → one string (text parts joined by newlines), as vLLM does.
    private func flattenContent(_ content: TemplateValue?, index: Int) throws(APIError) -> TemplateValue {
        switch content {
        case nil, .null?: return .null
        case .string?: return content!
        case .array(let parts)?:
            var texts: [String] = []
            for part in parts {
                guard part["type"]?.stringValue == "text", let text = part["text"]?.stringValue else {
                    throw .invalid("'messages[\(index)].content' may only hold text parts; this server has no image or audio input.", param: "messages")
                }
                texts.append(text)
            }
            return .string(texts.joined(separator: "\n"))
        default:
            throw .invalid("'messages[\(index)].content' must be a string or an array of text parts.", param: "messages")
        }
    }
}
