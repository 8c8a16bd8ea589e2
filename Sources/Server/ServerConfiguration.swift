/// How an instance serves: where it listens, what it calls itself, and its limits.
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 30000
    /// The name clients put in `model` (`--served-model-name`); defaults to the model path.
    public var servedModelName: String
    /// The local checkpoint folder, reported by /model_info (the SGLang router reads it).
    public var modelPath: String
    /// When set, every endpoint but /health needs `Authorization: Bearer <key>`.
    public var apiKey: String?
    /// Requests decoding at once; with `maxQueuedRequests` it bounds admission.
    public var maxRunningRequests = 64
    /// Requests allowed to wait beyond the running ones before 503 (`--max-queued-requests`).
    public var maxQueuedRequests = 1024
    /// Seconds in-flight requests get to finish on SIGTERM before they are aborted.
    public var shutdownTimeout: Double = 30
    /// `null`, `prefill` or `decode` (reported to routers).
    public var disaggregationMode = "null"
    /// Chat template source overriding the tokenizer's (`--chat-template`).
    public var chatTemplate: String?
    /// Extra facts for /get_server_info (e.g. the bootstrap and transfer ports of a PD instance).
    public var extraInfo: [String: String] = [:]
    /// Largest request body accepted.
    public var maxRequestBodyBytes = 64 << 20
    /// Connection count, idle and body-read bounds.
    public var httpLimits = HTTPLimits()
    /// How chat replies are split into text and `tool_calls` (`--tool-call-parser`); nil: replies stay text.
    public var toolCallParser: ToolCallFormat?
    /// Spans of each HTTP request and engine request go to the tracer (`--otlp-traces-endpoint`).
    public var tracing = false

    public init(servedModelName: String, modelPath: String) {
        self.servedModelName = servedModelName
        self.modelPath = modelPath
    }
}
