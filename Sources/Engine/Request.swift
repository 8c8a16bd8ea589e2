import Grammar
import Tokenization

/// Why a request stopped.
public enum FinishReason: Sendable, Equatable {
    /// A stop token (EOS or a requested id) or a stop string ended it.
    case stop(matched: String?)
    /// It reached max_new_tokens.
    case length
    /// It was aborted: the client went away, asked for it, or the server shut down.
    case abort(message: String)
    /// The server could not serve it (a PD transfer failed, timed out, or its
    /// peer died): an error the client did not cause, answered with a 5xx.
    case failed(RequestFailure)

    /// The OpenAI / SGLang name (SGLang reports failures as aborts too).
    public var name: String {
        switch self {
        case .stop: "stop"
        case .length: "length"
        case .abort, .failed: "abort"
        }
    }

    /// The message of an abort or failure.
    public var message: String? {
        switch self {
        case .abort(let message): message
        case .failed(let failure): failure.message
        case .stop, .length: nil
        }
    }
}

/// Why the server failed a request it had accepted.
public struct RequestFailure: Sendable, Equatable, Error, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// KV pages or the first token did not make it between the instances.
        case transfer
        /// The other half did not show up, or the KV did not arrive, in time.
        case timeout
        /// The peer instance stopped answering or closed the connection.
        case peerLost = "peer_lost"
        /// The peer sent something that breaks the protocol or this pool's limits.
        case invalidPeerData = "invalid_peer_data"
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

/// What a client submits.
public struct GenerateInput: Sendable {
    public var id: String
    public var promptTokens: [Int]
    public var params: SamplingParams
    /// Set when the request is one half of a disaggregated (PD) request.
    public var bootstrap: BootstrapTarget?
    /// SGLang's request `priority` (with `--enable-priority-scheduling`).
    public var priority: Int?
    /// The client's name for it (SGLang's `rid`), shown in profiles.
    public var name: String?
    /// What the output must match (`regex`, `json_schema`, `response_format`), compiled.
    public var grammar: Grammar?

    public init(id: String, promptTokens: [Int], params: SamplingParams, bootstrap: BootstrapTarget? = nil) {
        self.id = id
        self.promptTokens = promptTokens
        self.params = params
        self.bootstrap = bootstrap
    }
}

/// What one engine step produced for one request.
public struct RequestUpdate: Sendable {
    public var id: String
    public var newTokens: [Int] = []
    public var newLogprobs: [TokenLogprob] = []
    /// Text that is final (no later token or stop string can change it).
    public var textDelta = ""
    public var finish: FinishReason?
    public var promptTokenCount: Int
    public var completionTokenCount: Int
    /// Prompt tokens served from the prefix cache.
    public var cachedTokenCount: Int
    /// Logprobs of prompt tokens from `inputLogprobStart` on (nil for the
    /// first prompt token, which nothing predicts); sent once, with the first token.
    public var inputLogprobs: [TokenLogprob?] = []
    /// Where the request's time went; sent once, with its end.
    public var phases: RequestPhases?
}

/// A request's state inside the engine: its tokens, its KV pages and how
/// far the KV cache has caught up with the tokens.
final class Request {
    let id: String
    let promptCount: Int
    let params: SamplingParams
    let arrival: Int
    let priority: Int?
    /// One half of a disaggregated request: the side-car hears about its KV and its end.
    let isDisaggregated: Bool
    /// The PD room (`bootstrap_room`) of a disaggregated request.
    let room: UInt64?
    /// The client's name for it (`rid`), or its id.
    let name: String
    /// Prompt followed by generated tokens.
    private(set) var tokens: [Int32]
    /// Pages holding the KV of positions 0..<computed (and room beyond).
    var pages: [Int32] = []
    /// Tokens whose K and V are in the cache.
    var computed = 0
    var cachedTokenCount = 0
    var rng: RandomSource
    var detokenizer: IncrementalDetokenizer
    /// All decoded output text as UTF-8, cut at a stop string if one matched
    /// (bytes, so each token appends instead of re-copying the whole text).
    private(set) var textBytes: [UInt8] = []
    /// UTF-8 bytes of `text` already handed to the client.
    var emittedBytes = 0
    var finish: FinishReason?
    /// Prompt logprobs gathered while prefilling, by token index.
    var inputLogprobs: [Int: TokenLogprob] = [:]
    let arrivedAt = ContinuousClock.now
    /// The prompt's first forward pass (never set on a PD decode, which runs no prompt).
    var promptStartedAt: ContinuousClock.Instant?
    var firstTokenAt: ContinuousClock.Instant?
    /// What a PD side-car measured of this half.
    var transferPhases = RequestPhases()
    /// Where the output stands in its constraint, if it has one.
    var grammar: GrammarMatcher?

    init(input: GenerateInput, arrival: Int, tokenizer: Tokenizer) {
        id = input.id
        promptCount = input.promptTokens.count
        params = input.params
        self.arrival = arrival
        priority = input.priority
        isDisaggregated = input.bootstrap != nil
        room = input.bootstrap?.room
        name = input.name ?? input.id
        tokens = input.promptTokens.map { Int32($0) }
        rng = RandomSource(seed: input.params.seed ?? UInt64.random(in: .min ... .max))
        detokenizer = IncrementalDetokenizer(tokenizer: tokenizer, skipSpecialTokens: input.params.skipSpecialTokens)
        grammar = input.grammar.map(GrammarMatcher.init)
    }

    var promptTokens: ArraySlice<Int32> { tokens[..<promptCount] }
    var outputTokens: ArraySlice<Int32> { tokens[promptCount...] }
    var outputCount: Int { tokens.count - promptCount }
    /// Tokens still to run through the model before the next sample.
    var pendingCount: Int { tokens.count - computed }
    /// Prefill is done; each step feeds the last sampled token.
    var isDecoding: Bool { pendingCount == 1 && outputCount > 0 }

    func append(_ token: Int32) { tokens.append(token) }
    func appendText(_ text: String) { textBytes += text.utf8 }
    func truncateText(to count: Int) { textBytes.removeSubrange(count...) }

    /// The engine's phases so far, with the side-car's; `decode` only where this instance decodes.
    func phases(decodes: Bool) -> RequestPhases {
        var phases = transferPhases
        let now = ContinuousClock.now
        if let started = promptStartedAt {
            phases[.queueWait] = (started - arrivedAt).inSeconds
            phases[.prefillCompute] = ((firstTokenAt ?? now) - started).inSeconds
        }
        if decodes, let first = firstTokenAt { phases[.decode] = (now - first).inSeconds }
        return phases
    }

    /// First prompt index whose logprob is still to be computed, if any.
    var inputLogprobStart: Int? {
        guard let start = params.inputLogprobStart, outputCount == 0 else { return nil }
        return min(start, promptCount)
    }

    /// Prompt logprobs from the requested start, in order (nil where nothing
    /// predicts the token). None on a PD decode, which never ran the prompt:
    /// its prefill's answer has them (a router puts them in front).
    var orderedInputLogprobs: [TokenLogprob?] {
        guard let start = params.inputLogprobStart, promptStartedAt != nil else { return [] }
        return (min(start, promptCount)..<promptCount).map { inputLogprobs[$0] }
    }
}
