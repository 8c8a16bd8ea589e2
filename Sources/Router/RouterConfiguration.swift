import Server
/// Everything `pdserve router` is started with.
public struct RouterConfiguration: Sendable {
    public var host = "127.0.0.1"
    /// 0 picks a free port.
    public var port = 30000
    /// Prefill/decode mode (`--pd-disaggregation`): requests go to a prefill and a decode in parallel.
    public var pdDisaggregation = false
    /// The workers known at start; more can be added through `POST /workers`.
    public var workers: [WorkerSpec] = []
    /// Policy of plain mode, and of both halves in PD mode unless overridden.
    public var policy: PolicyKind = .cacheAware
    public var prefillPolicy: PolicyKind?
    public var decodePolicy: PolicyKind?
    /// When set, every endpoint but `/health` needs `Authorization: Bearer <key>`;
    /// the router also sends it on the calls it makes itself (load polls, aborts, fan-outs).
    public var apiKey: String?
    /// Seconds a request may take from the router's first byte sent to the last byte received.
    public var requestTimeoutSeconds = 1800.0
    /// Largest request body accepted (413 above).
    public var maxPayloadBytes = 512 << 20
    /// Connection count, idle and body-read bounds of the router's own HTTP server.
    public var httpLimits = HTTPLimits()
    public var retry = RetrySettings()
    public var circuitBreaker = CircuitBreakerSettings()
    public var health = HealthSettings()
    public var cacheAware = CacheAwareSettings()
    /// A server span per request and a client span per worker call, `traceparent` passed on (`--otlp-traces-endpoint`).
    public var tracing = false

    public init() {}

    /// The role a worker added without one gets in this mode.
    var defaultRole: WorkerRole { pdDisaggregation ? .decode : .regular }

    /// Whether a worker of `role` belongs in this mode.
    func accepts(_ role: WorkerRole) -> Bool {
        pdDisaggregation ? role != .regular : role == .regular
    }
}
