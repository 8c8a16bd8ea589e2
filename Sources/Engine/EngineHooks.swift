/// Where a prefill instance's bootstrap server is and which room pairs the
/// two halves of a disaggregated request (SGLang's bootstrap_* fields).
public struct BootstrapTarget: Sendable, Equatable, Hashable {
    public var host: String
    /// nil means the prefill's default bootstrap port.
    public var port: Int?
    public var room: UInt64

    public init(host: String, port: Int?, room: UInt64) {
        self.host = host
        self.port = port
        self.room = room
    }
}

/// How the engine treats a request that carries a `BootstrapTarget`.
public enum DisaggregatedAdmission: Sendable {
    /// Prefill side: queued like any prompt, but started only when `mayPrefill` says so.
    case prefill
    /// Decode side: parked (no compute) until its prompt's KV arrives; see
    /// `EngineCore.preallocate`, `activate` and `abandon`.
    case park
}

/// What the engine tells the disaggregation side-car, and asks it. All
/// calls happen on the engine thread, so implementations may call back
/// into `EngineCore` from them.
public protocol EngineHooks: AnyObject {
    /// Decides the admission of a disaggregated request when it is added.
    func admission(for input: GenerateInput) -> DisaggregatedAdmission
    /// Start of every step (and of idle polls while transfers are pending).
    func willStep(_ core: EngineCore)
    /// Prefill side: whether a queued request may start its prompt.
    func mayPrefill(id: String) -> Bool
    /// After a forward pass: KV of tokens 0..<computed is now in `pages`.
    func computedKV(id: String, pages: [Int32], computed: Int, promptCount: Int)
    /// The request sampled its first output token.
    func sampledFirstToken(id: String, token: Int, logprob: TokenLogprob?)
    /// The request is ending (finished, aborted or abandoned). Returning
    /// true keeps its pages (a transfer still reads or writes them) until the
    /// side-car calls `EngineCore.releaseHeld(id:failure:)`.
    func ending(id: String, reason: FinishReason) -> Bool
}
