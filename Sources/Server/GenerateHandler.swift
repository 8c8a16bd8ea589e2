import Engine
import Foundation
import Hummingbird
import Tokenization

/// `POST /generate` (SGLang native): text or input_ids, single or batch,
/// `sampling_params`, streaming with cumulative text, logprobs in SGLang's
/// `[logprob, token_id, text]` triples.
struct GenerateHandler: Sendable {
    let service: InferenceService

    struct Options {
        var returnLogprob = false
        var topLogprobsNum = 0
        var logprobStartLen = -1
        var returnTextInLogprobs = false
    }

    /// The top-level fields of a /generate body (the rest are refused by name).
    static let fields = SamplingParser.routingFields.union(SamplingParser.judgedFields).union([
        "model", "text", "input_ids", "sampling_params", "stream", "return_logprob", "top_logprobs_num", "logprob_start_len",
        "return_text_in_logprobs", PriorityField.name,
    ])

    func handle(_ request: Request, context: ServerRequestContext) async throws -> Response {
        let body = try await RequestReader.json(request, configuration: service.configuration)
        let tokenizer = service.tokenizer
        try SamplingParser.rejectUnsupported(body)
        try body.rejectUnknown(allowed: Self.fields)
        try RequestReader.checkModel(body, configuration: service.configuration)
        let prompts: [[Int]], isBatch: Bool
        switch (body.has("text"), body.has("input_ids")) {
        case (true, true):
            throw APIError.invalid("Give either 'text' or 'input_ids', not both.", param: "input_ids")
        case (false, true):
            (prompts, isBatch) = try PromptParser.batch(body.fields["input_ids"]!, field: "input_ids", form: .ids, tokenizer: tokenizer)
        case (true, false):
            (prompts, isBatch) = try PromptParser.batch(body.fields["text"]!, field: "text", form: .text, tokenizer: tokenizer)
        case (false, false):
            throw APIError.invalid("Either 'text' or 'input_ids' is required.", param: "text")
        }
        var options = Options()
        options.returnLogprob = try body.bool("return_logprob") ?? false
        options.topLogprobsNum = try body.int("top_logprobs_num", in: RequestBounds.topLogprobs) ?? 0
        options.logprobStartLen = try body.int("logprob_start_len", in: RequestBounds.promptOffset) ?? -1
        options.returnTextInLogprobs = try body.bool("return_text_in_logprobs") ?? false

        // sampling_params: one object for all prompts, or one per prompt.
        var perPrompt: [JSONBody?]
        if let list = body.fields["sampling_params"] as? [Any] {
            guard list.count == prompts.count, let objects = list as? [[String: Any]] else {
                throw APIError.invalid("'sampling_params' must be an object or one object per prompt.", param: "sampling_params")
            }
            let ordered = body.ordered?["sampling_params"]?.arrayValue
            perPrompt = objects.enumerated().map { JSONBody(fields: $1, path: "sampling_params.", ordered: ordered?[$0]) }
        } else {
            perPrompt = Array(repeating: try body.object("sampling_params"), count: prompts.count)
        }
        var inputs: [GenerateInput] = []
        var names: [String] = []
        let rids = try ridList(body, count: prompts.count)
        for (i, prompt) in prompts.enumerated() {
            var (params, n) = try SamplingParser.native(perPrompt[i])
            if options.returnLogprob {
                params.returnLogprobs = true
                params.topLogprobs = options.topLogprobsNum
                if options.logprobStartLen >= 0 { params.inputLogprobStart = options.logprobStartLen }
                try SamplingParser.validate(params)
            }
            let constraint = try perPrompt[i].flatMap { sampling throws(APIError) in try ConstraintFields.spec(sampling, fields: ConstraintFields.native) }
            let grammar = try ConstraintFields.compile(constraint, engine: service.engine)
            for (j, replica) in SamplingParser.replicas(params, n: n).enumerated() {
                var input = GenerateInput(id: UUID().uuidString, promptTokens: prompt, params: replica)
                input.grammar = grammar
                inputs.append(input)
                let base = rids?[i] ?? inputs.last!.id
                names.append(n == 1 ? base : "\(base)-\(j)")
            }
        }
        try BootstrapFields.apply(body, mode: service.configuration.disaggregationMode, to: &inputs)
        try PriorityField.apply(body, to: &inputs)
        try service.admit(inputs)
        let started = ContinuousClock.now
        let batch = isBatch || inputs.count > 1

        if try body.bool("stream") == true {
            let updates = try await service.start(inputs, names: names, channel: context.channel, logger: context.logger)
            let (inputs, names, options) = (inputs, names, options)
            return SSE.response { send in
                var totals = Array(repeating: Generation(), count: inputs.count)
                while let (index, update) = try await updates.next() {
                    totals[index].absorb(update)
                    var object = render(totals[index], prompt: inputs[index].promptTokens, name: names[index], options: options, started: started, tokenizer: tokenizer)
                    if batch { object["index"] = index }
                    try await send(object)
                }
            }
        }
        let results = try await service.collect(inputs, names: names, channel: context.channel, logger: context.logger)
        let objects = results.enumerated().map {
            render($1, prompt: inputs[$0].promptTokens, name: names[$0], options: options, started: started, tokenizer: tokenizer)
        }
        return JSON.response(batch ? objects as Any : objects[0] as Any)
    }

    private func ridList(_ body: JSONBody, count: Int) throws(APIError) -> [String]? {
        guard let value = body.fields["rid"], !(value is NSNull) else { return nil }
        if let one = value as? String, count == 1 { return [one] }
        if let list = value as? [String], list.count == count { return list }
        throw .invalid("'rid' must be a string, or one string per prompt.", param: "rid")
    }

    /// SGLang's response object, cumulative so far.
    private func render(_ g: Generation, prompt: [Int], name: String, options: Options, started: ContinuousClock.Instant, tokenizer: Tokenizer) -> [String: Any] {
        var meta: [String: Any] = [
            "id": name, "prompt_tokens": g.promptTokens, "completion_tokens": g.completionTokens,
            "cached_tokens": g.cachedTokens, "finish_reason": finishReason(g),
        ]
        if g.finish != nil {
            meta["e2e_latency"] = (ContinuousClock.now - started).inSeconds
        }
        if let phases = g.phases { meta["phases"] = phases.json }
        if options.returnLogprob {
            func triple(_ logprob: Float?, _ token: Int) -> [Any] {
                [logprob.map { $0 as Any } ?? NSNull(), token, options.returnTextInLogprobs ? tokenizer.decode([token]) : NSNull()]
            }
            meta["output_token_logprobs"] = g.logprobs.map { triple($0.logprob, $0.token) }
            meta["output_top_logprobs"] = g.logprobs.map { lp in lp.top.map { triple($0.logprob, $0.token) } }
            // Nothing predicts the first prompt token: its logprob is null.
            let start = prompt.count - g.inputLogprobs.count
            meta["input_token_logprobs"] = g.inputLogprobs.enumerated().map { offset, lp -> [Any] in
                triple(lp?.logprob, prompt[start + offset])
            }
            meta["input_top_logprobs"] = g.inputLogprobs.map { lp -> Any in lp.map { $0.top.map { triple($0.logprob, $0.token) } as Any } ?? NSNull() }
        }
        return ["text": g.text, "output_ids": g.tokens, "meta_info": meta]
    }

    private func finishReason(_ g: Generation) -> Any {
        switch g.finish {
        case nil: return NSNull()
        case .length: return ["type": "length", "length": g.completionTokens]
        case .stop(let matched?): return ["type": "stop", "matched": matched]
        case .stop(nil): return ["type": "stop", "matched": g.tokens.last as Any]
        case .abort(let message): return ["type": "abort", "message": message]
        case .failed(let failure):
            // SGLang's FINISH_ABORT carries the status and error type of a server-side failure.
            let error = APIError.failed(failure)
            return ["type": "abort", "message": failure.message, "status_code": Int(error.status.code), "err_type": error.type]
        }
    }
}
