import Engine
import Tokenization

/// `echo: true` on `/v1/completions`: every choice starts with its prompt,
/// the text as the client sent it (decoded when it sent token ids) and,
/// when logprobs are asked for, one entry per prompt token. With
/// `max_tokens: 0` the prompt is all a choice holds — how
/// lm-evaluation-harness scores a text. Prompt logprobs come out of the
/// prefill, so such a request still runs one step, whose token is dropped.
struct CompletionEcho: Sendable {
    let prompts: [[Int]]
    let promptTexts: [String]
    /// Choices per prompt (`n`): choice `i` echoes prompt `i / samples`.
    let samples: Int
    /// False for `max_tokens: 0`: the generated token is not part of the answer.
    let keepsGeneration: Bool

    /// Reads `echo` and adjusts `params` for it; nil when the body does not ask for an echo.
    init?(_ body: JSONBody, prompts: [[Int]], params: inout SamplingParams, samples: Int, tokenizer: Tokenizer) throws(APIError) {
        guard try body.bool("echo") == true else { return nil }
        self.prompts = prompts
        self.samples = samples
        let given = body.fields["prompt"]
        let texts = (given as? String).map { [$0] } ?? (given as? [Any])?.compactMap { $0 as? String } ?? []
        promptTexts = texts.count == prompts.count ? texts : prompts.map { tokenizer.decode($0) }
        keepsGeneration = params.maxNewTokens > 0
        if params.returnLogprobs {
            params.inputLogprobStart = 0
            params.maxNewTokens = max(params.maxNewTokens, 1)
        }
    }

    func promptText(choice: Int) -> String { promptTexts[choice / samples] }

    /// The choice's text: its prompt, then what it generated (if that is kept).
    func text(choice: Int, generated: String) -> String {
        promptText(choice: choice) + (keepsGeneration ? generated : "")
    }

    /// The prompt's entries followed by the generated ones (if kept). A
    /// generation without prompt logprobs (a PD decode: its prefill computed
    /// them) gets nulls, which a PD router fills from the prefill's answer.
    func logprobs(choice: Int, of g: Generation, generated: [TokenLogprob], tokenizer: Tokenizer) -> CompletionLogprobs {
        let prompt = prompts[choice / samples]
        let known = g.inputLogprobs.count == prompt.count ? g.inputLogprobs : Array(repeating: nil, count: prompt.count)
        let head = CompletionLogprobs(tokens: prompt, logprobs: known, tokenizer: tokenizer, textOffset: 0)
        guard keepsGeneration else { return head }
        return head + CompletionLogprobs(generated, tokenizer: tokenizer, textOffset: promptText(choice: choice).count)
    }
}
