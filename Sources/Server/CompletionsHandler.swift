import Engine
import Foundation
import Hummingbird

/// `POST /v1/completions` (OpenAI).
struct CompletionsHandler: Sendable {
    let service: InferenceService

    func handle(_ request: Request, context: ServerRequestContext) async throws -> Response {
        let body = try await RequestReader.json(request, configuration: service.configuration)
        try RequestReader.checkModel(body, configuration: service.configuration)
        try SamplingParser.rejectUnsupported(body)
        try body.rejectUnknown(allowed: SamplingParser.completionsFields)
        guard let promptValue = body.fields["prompt"], !(promptValue is NSNull) else {
            throw APIError.invalid("'prompt' is required.", param: "prompt")
        }
        if body.has("suffix") { throw APIError.invalid("'suffix' is not supported by this server.", param: "suffix") }
        let (prompts, _) = try PromptParser.batch(promptValue, field: "prompt", form: .either, tokenizer: service.tokenizer)
        var (params, n) = try SamplingParser.openAI(body, defaultMaxTokens: 16, chat: false)
        let echo = try CompletionEcho(body, prompts: prompts, params: &params, samples: n, tokenizer: service.tokenizer)
        if let bestOf = try body.int("best_of", in: RequestBounds.samples), bestOf != n {
            throw APIError.invalid("'best_of' other than n is not supported.", param: "best_of")
        }
        var inputs = prompts.flatMap { prompt in
            SamplingParser.replicas(params, n: n).map { GenerateInput(id: OpenAIFormat.newID("cmpl"), promptTokens: prompt, params: $0) }
        }
        try ConstraintFields.apply(try ConstraintFields.spec(body, fields: ConstraintFields.openAI), engine: service.engine, to: &inputs)
        try BootstrapFields.apply(body, mode: service.configuration.disaggregationMode, to: &inputs)
        try PriorityField.apply(body, to: &inputs)
        try service.admit(inputs)
        let id = OpenAIFormat.newID("cmpl")
        let model = service.configuration.servedModelName
        let created = OpenAIFormat.now
        let tokenizer = service.tokenizer
        let phases = try body.bool(OpenAIFormat.returnPhasesField) ?? false

        if try body.bool("stream") == true {
            let includeUsage = try OpenAIFormat.streamIncludesUsage(body)
            let updates = try await service.start(inputs, names: try RequestReader.names(body, for: inputs), channel: context.channel, logger: context.logger)
            let (inputs, params) = (inputs, params)
            return SSE.response { send in
                var totals = Array(repeating: Generation(), count: inputs.count)
                var textOffsets = Array(repeating: 0, count: inputs.count)
                var echoed = Array(repeating: echo == nil, count: inputs.count)
                while let (index, update) = try await updates.next() {
                    totals[index].absorb(update)
                    guard !update.textDelta.isEmpty || update.finish != nil || !update.newLogprobs.isEmpty else { continue }
                    var text = update.textDelta
                    var logprobs = CompletionLogprobs(update.newLogprobs, tokenizer: tokenizer, textOffset: textOffsets[index])
                    var finish = update.finish
                    if let echo {
                        // The first event of a choice carries its prompt; without generation, nothing else does.
                        if echoed[index] { if !echo.keepsGeneration { continue } } else {
                            echoed[index] = true
                            text = echo.text(choice: index, generated: text)
                            logprobs = echo.logprobs(choice: index, of: totals[index], generated: update.newLogprobs, tokenizer: tokenizer)
                            if !echo.keepsGeneration { finish = .length }
                        }
                    }
                    var choice: [String: Any] = ["index": index, "text": text, "logprobs": NSNull(),
                                                 "finish_reason": OpenAIFormat.finishReason(finish)]
                    if params.returnLogprobs { choice["logprobs"] = logprobs.json }
                    textOffsets[index] += text.count
                    choice = OpenAIFormat.withPhases(choice, totals[index], asked: phases)
                    try await send(["id": id, "object": "text_completion", "created": created, "model": model, "choices": [choice]])
                }
                if includeUsage {
                    let completion = echo?.keepsGeneration == false ? 0 : totals.map(\.completionTokens).reduce(0, +)
                    let usage = OpenAIFormat.usage(prompt: totals.map(\.promptTokens).reduce(0, +), completion: completion,
                                                   cached: totals.map(\.cachedTokens).reduce(0, +))
                    try await send(["id": id, "object": "text_completion", "created": created, "model": model, "choices": [Any](), "usage": usage])
                }
            }
        }

        let results = try await service.collect(inputs, names: try RequestReader.names(body, for: inputs), channel: context.channel, logger: context.logger)
        let choices = results.indices.map { index -> [String: Any] in
            let result = results[index]
            var logprobs = CompletionLogprobs(result.logprobs, tokenizer: tokenizer, textOffset: 0)
            var (text, finish) = (result.text, result.finish)
            if let echo {
                text = echo.text(choice: index, generated: text)
                logprobs = echo.logprobs(choice: index, of: result, generated: result.logprobs, tokenizer: tokenizer)
                if !echo.keepsGeneration { finish = .length }
            }
            return OpenAIFormat.withPhases(["index": index, "text": text, "finish_reason": OpenAIFormat.finishReason(finish),
                                            "logprobs": params.returnLogprobs ? logprobs.json as Any : NSNull()], result, asked: phases)
        }
        // Each prompt counts once in usage, however many samples it has.
        let promptTokens = stride(from: 0, to: results.count, by: n).map { results[$0].promptTokens }.reduce(0, +)
        return JSON.response([
            "id": id, "object": "text_completion", "created": created, "model": model, "choices": choices,
            "usage": OpenAIFormat.usage(prompt: promptTokens, completion: echo?.keepsGeneration == false ? 0 : results.map(\.completionTokens).reduce(0, +),
                                        cached: results.map(\.cachedTokens).reduce(0, +)),
        ])
    }
}

/// Reading request bodies into `JSONBody`, and the checks every generation endpoint makes.
enum RequestReader {
    static func json(_ request: Request, configuration: ServerConfiguration, limit: Int? = nil) async throws -> JSONBody {
        let buffer = try await configuration.httpLimits.body(of: request, limit: limit ?? configuration.maxRequestBodyBytes)
        return try JSONBody(data: Data(buffer.readableBytesView))
    }


    /// Names `/abort_request` can use for OpenAI requests: the body's `rid`
    /// (a PD router sets one) names every input of the request, so aborting
    /// it stops a whole batch — what a router aborting an orphaned half needs.
    static func names(_ body: JSONBody, for inputs: [GenerateInput]) throws(APIError) -> [String]? {
        guard let rid = try body.string("rid") else { return nil }
        return Array(repeating: rid, count: inputs.count)
    }

    /// A `model` naming something else than what is served is a 404.
    static func checkModel(_ body: JSONBody, configuration: ServerConfiguration) throws(APIError) {
        guard let model = try body.string("model") else { return }
        guard model == configuration.servedModelName || model == configuration.modelPath || model == "default" else {
            throw .modelNotFound(model, served: configuration.servedModelName)
        }
    }
}
