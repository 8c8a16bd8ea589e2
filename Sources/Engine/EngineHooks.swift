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

/// Who owns a disaggregated request's KV pages once the request ends. The
/// side-car answers this in `EngineHooks.ending`; the engine never frees a
/// page the side-car has claimed.
public enum PageCustody: Sendable, Equatable {
    /// Nothing else touches the pages: the engine frees them and reports the end now.
    case engine
    /// Prefill side (inflight queue): transfer jobs still read the pages.
    /// The engine keeps the request and reports its end only when the
    /// side-car calls `EngineCore.finishInflight(id:failure:)`.
    case inflight
    /// Decode side: a peer may still write into the pages. The end is
    /// reported now, but the pages stay leased to the side-car — out of the
    /// allocator and out of the prefix cache — until it calls
    /// `EngineCore.returnLease(id:)`.
    case leased
}

/// What the engine tells the disaggregation side-car, and asks it. All
/// calls happen on the engine thread, so implementations may call back
/// into `EngineCore` from `willStep` (not from the other hooks).
public protocol EngineHooks: AnyObject {
    /// Prefill side: a disaggregated request computes its prompt and its
    /// first token only (SGLang's prefill forces max_new_tokens to 1); the
    /// decode half generates the rest.
    var generatesFirstTokenOnly: Bool { get }
    /// Decides the admission of a disaggregated request when it is added.
    func admission(for input: GenerateInput) -> DisaggregatedAdmission
    /// Start of every step (and of idle polls while transfers are pending):
    /// the side-car polls its queues top-down and moves requests between them.
    func willStep(_ core: EngineCore)
    /// Prefill side: whether a queued request may start its prompt.
    func mayPrefill(id: String) -> Bool
    /// After a forward pass: KV of tokens 0..<computed is now in `pages`.
    func computedKV(id: String, pages: [Int32], computed: Int, promptCount: Int)
    /// The request sampled its first output token.
    func sampledFirstToken(id: String, token: Int, logprob: TokenLogprob?)
    /// The request is ending, for whatever reason: the one end path of a
    /// room. The answer says who keeps its pages, and the half's PD phases
    /// when they are final now.
    func ending(id: String, reason: FinishReason) -> RoomEnding
}

/// A side-car's answer to `EngineHooks.ending`.
public struct RoomEnding: Sendable {
    public var custody: PageCustody
    /// The half's phases, taken in the same critical section as the custody
    /// (asked separately, a transfer job finishing in between left a prefill
    /// without its `kv_transfer`); nil where the side-car hands them over
    /// later (`finishInflight`, or a decode's activation).
    public var phases: RequestPhases?

    public init(custody: PageCustody, phases: RequestPhases? = nil) {
        self.custody = custody
        self.phases = phases
    }
}
