/// What one request measured, in seconds from when it was sent.
public struct ServingRequestOutcome: Sendable {
    public var workloadClass: String
    public var success = false
    /// Time to the first chunk that carried a token.
    public var ttft = 0.0
    /// Gaps between consecutive token-carrying chunks (one per chunk, as
    /// sglang and vLLM count them; a chunk with several tokens is one gap).
    public var itls: [Double] = []
    /// Time to the end of the response.
    public var latency = 0.0
    /// Prompt tokens: the server's count when it reports one, else the client's.
    public var promptLength: Int
    /// Tokens generated: the server's count when it reports one, else chunks seen.
    public var outputLength = 0
    /// Output tokens asked for (`max_new_tokens`).
    public var requestedOutputLength: Int
    public var error: String?
    /// Seconds from the run's start to when the request was sent.
    public var sentAt = 0.0

    public init(workloadClass: String, promptLength: Int, requestedOutputLength: Int) {
        self.workloadClass = workloadClass
        self.promptLength = promptLength
        self.requestedOutputLength = requestedOutputLength
    }

    /// Time per output token after the first; nil for single-token outputs.
    public var tpot: Double? {
        outputLength > 1 ? (latency - ttft) / Double(outputLength - 1) : nil
    }
}
