import ByteExactJSON
import ChatTemplates
import Engine
import Foundation
import Grammar
import Hummingbird
import Tokenization

/// `POST /v1/chat/completions` (OpenAI): messages rendered through the
/// model's Jinja chat template, then generated like a completion.
struct ChatCompletionsHandler: Sendable {
    let service: InferenceService
    let renderer: ChatPromptRenderer

    init(service: InferenceService) {
        self.service = service
        renderer = ChatPromptRenderer(templateSource: service.configuration.chatTemplate ?? service.tokenizer.chatTemplate,
                                      tokenizer: service.tokenizer)
    }

    func handle(_ request: Request, context: ServerRequestContext) async throws -> Response {
        let buffer = try await service.configuration.httpLimits.body(of: request, limit: service.configuration.maxRequestBodyBytes)
        let document = try RequestDocument.parse(Data(buffer.readableBytesView))
        let body = try JSONBody(document: document)
        try RequestReader.checkModel(body, configuration: service.configuration)
        try SamplingParser.rejectUnsupported(body)
        try body.rejectUnknown(allowed: SamplingParser.chatFields)
        // Key order matters for tool schemas rendered with tojson: the template values come
        // from the parsed document, which keeps it.
        let prompt = try renderer.render(TemplateValue(json: document), addGenerationPrompt: try body.bool("add_generation_prompt") ?? true)
        let tokenizer = service.tokenizer
        let tokens = tokenizer.encode(prompt, addSpecialTokens: false)
        guard !tokens.isEmpty else { throw APIError.invalid("The rendered chat prompt is empty.", param: "messages") }
        let remaining = max(0, service.engine.contextLength - tokens.count)
        let (params, n) = try SamplingParser.openAI(body, defaultMaxTokens: remaining, chat: true)
        var inputs = SamplingParser.replicas(params, n: n).map { GenerateInput(id: OpenAIFormat.newID("chatcmpl"), promptTokens: tokens, params: $0) }
        let toolChoice = try ToolChoice(body)
        var constraint = try ConstraintFields.spec(body, fields: ConstraintFields.openAI)
        if let schema = try toolChoice.schema(body) {
            if let other = constraint {
                throw APIError.invalid("'tool_choice' forces a call, which cannot be combined with '\(other.field)'.", param: other.field)
            }
            constraint = ("tool_choice", .jsonSchema(schema))
        }
        try ConstraintFields.apply(constraint, engine: service.engine, to: &inputs)
        try BootstrapFields.apply(body, mode: service.configuration.disaggregationMode, to: &inputs)
        try PriorityField.apply(body, to: &inputs)
        try service.admit(inputs)
        let id = OpenAIFormat.newID("chatcmpl")
        let model = service.configuration.servedModelName
        let created = OpenAIFormat.now
        let tools = toolCallReader(body, choice: toolChoice)
        let phases = try body.bool(OpenAIFormat.returnPhasesField) ?? false

        if try body.bool("stream") == true {
            let includeUsage = try OpenAIFormat.streamIncludesUsage(body)
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
                var splitters = inputs.map { _ in tools.map(ToolCallStream.init(reader:)) }
                while let (index, update) = try await updates.next() {
                    totals[index].absorb(update)
                    var text = splitters[index]?.feed(update.textDelta) ?? update.textDelta
                    var calls: [ToolCall] = []
                    if update.finish != nil, let rest = splitters[index]?.finish() {
                        text += rest.content
                        calls = rest.calls
                    }
                    guard !text.isEmpty || update.finish != nil || !update.newLogprobs.isEmpty else { continue }
                    var delta: [String: Any] = text.isEmpty ? [:] : ["content": text]
                    if !calls.isEmpty {
                        delta["tool_calls"] = calls.enumerated().map { $1.openAI(id: ToolCall.newID(), index: $0) }
                    }
                    var choice: [String: Any] = ["index": index, "delta": delta, "logprobs": NSNull(),
                                                 "finish_reason": Self.finishReason(update.finish, calls: calls)]
                    if params.returnLogprobs { choice["logprobs"] = ["content": OpenAIFormat.chatLogprobs(update.newLogprobs, tokenizer: tokenizer)] }
                    try await send(chunk([OpenAIFormat.withPhases(choice, totals[index], asked: phases)]))
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
            let reply = tools?.extract(result.text) ?? ToolCallExtraction(content: result.text, calls: [])
            var message: [String: Any] = ["role": "assistant", "content": reply.calls.isEmpty || !reply.content.isEmpty ? reply.content : NSNull()]
            if !reply.calls.isEmpty { message["tool_calls"] = reply.calls.map { $0.openAI(id: ToolCall.newID()) } }
            return OpenAIFormat.withPhases([
                "index": index, "message": message,
                "logprobs": params.returnLogprobs ? ["content": OpenAIFormat.chatLogprobs(result.logprobs, tokenizer: tokenizer)] : NSNull(),
                "finish_reason": Self.finishReason(result.finish, calls: reply.calls),
            ], result, asked: phases)
        }
        return JSON.response([
            "id": id, "object": "chat.completion", "created": created, "model": model, "choices": choices,
            "usage": OpenAIFormat.usage(prompt: tokens.count, completion: results.map(\.completionTokens).reduce(0, +),
                                        cached: results.map(\.cachedTokens).reduce(0, +)),
        ])
    }

    /// How this reply's calls are found, when it may call tools: as the
    /// forced array, or by the configured parser among the declared functions.
    private func toolCallReader(_ body: JSONBody, choice: ToolChoice) -> ToolCallReader? {
        if case .forced = choice { return .forced }
        let declared = ToolChoice.declaredNames(body)
        guard choice != .none, let format = service.configuration.toolCallParser, !declared.isEmpty else { return nil }
        return .format(format, declared: Set(declared))
    }

    /// OpenAI's "tool_calls" when a reply that ended by itself called tools.
    static func finishReason(_ finish: FinishReason?, calls: [ToolCall]) -> Any {
        if !calls.isEmpty, case .stop? = finish { return "tool_calls" }
        return OpenAIFormat.finishReason(finish)
    }
}
