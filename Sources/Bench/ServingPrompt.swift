/// One request of a benchmark workload: what to send and how many tokens to ask for.
public struct ServingPrompt: Sendable {
    /// Token ids, when the workload has them (random prompts): sent as
    /// `input_ids` / `prompt` so the server sees exactly `promptLength` tokens.
    public var tokenIds: [Int]?
    /// The prompt as text (chat endpoints, ShareGPT, or the decoded ids).
    public var text: String
    /// Prompt length in tokens as the client counted it.
    public var promptLength: Int
    /// Tokens to generate (`max_new_tokens` with `ignore_eos`).
    public var outputLength: Int
    /// The workload class this request belongs to (`all`, or `chat`/`doc` in a mixed run).
    public var workloadClass: String

    public init(tokenIds: [Int]?, text: String, promptLength: Int, outputLength: Int, workloadClass: String) {
        self.tokenIds = tokenIds
        self.text = text
        self.promptLength = promptLength
        self.outputLength = outputLength
        self.workloadClass = workloadClass
    }
}
