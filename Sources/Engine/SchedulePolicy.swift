/// `--schedule-policy`: the order in which waiting requests are admitted
/// (SGLang's names where the policy exists there).
public enum SchedulePolicy: String, Sendable, CaseIterable {
    /// First come, first served (retracted requests go back to the front).
    case fcfs
    /// Longest cached prefix first: reuses the radix cache before it is evicted.
    case lpm
    /// Longest requested output first.
    case lof
    /// Random order.
    case random
    /// Shortest remaining prompt first, with aging: a prompt's length counts
    /// `SchedulingContext.agingTokensPerArrival` tokens less for every request
    /// that arrived after it, so short prompts pass long ones — also one
    /// part-way through its chunks — without starving them (a long prompt
    /// waits at most length ÷ that many later arrivals).
    case sprf

    public static let help = "fcfs (default), lpm (longest cached prefix first), lof (longest output first), random, or sprf (shortest remaining prompt first, aged so long prompts never starve)."
}

/// What a policy may look at besides the queue.
struct SchedulingContext {
    /// Tokens of the request's prompt already in the prefix cache.
    let cachedPrefix: (Request) -> Int
    /// The arrival number of the newest request.
    let newestArrival: Int
    static let agingTokensPerArrival = 64
}

/// The order in which waiting requests are considered for admission.
protocol WaitingPolicy {
    func order(_ waiting: [Request], context: SchedulingContext) -> [Request]
    /// Whether prompts part-way through their chunks are ordered together
    /// with the waiting ones (else they take the step's budget first).
    var ordersPartialPrefills: Bool { get }
}

extension WaitingPolicy {
    var ordersPartialPrefills: Bool { false }
}

extension SchedulePolicy {
    func makeWaitingPolicy(seed: UInt64 = 0, priority: PriorityScheduling? = nil) -> any WaitingPolicy {
        let inner = policy(seed: seed)
        return priority.map { PriorityFirst(inner: inner, scheduling: $0) } ?? inner
    }

    private func policy(seed: UInt64) -> any WaitingPolicy {
        switch self {
        case .fcfs: FirstComeFirstServed()
        case .lpm: LongestPrefixFirst()
        case .lof: LongestOutputFirst()
        case .random: RandomOrder(seed: seed)
        case .sprf: ShortestPromptFirst()
        }
    }
}

struct FirstComeFirstServed: WaitingPolicy {
    func order(_ waiting: [Request], context: SchedulingContext) -> [Request] { waiting }
}

/// Ties keep queue order (the sorts are stable over the enumerated queue).
private func ordered(_ waiting: [Request], by key: (Request) -> Int) -> [Request] {
    waiting.enumerated().map { (key($0.element), $0.offset, $0.element) }.sorted { ($0.0, $0.1) < ($1.0, $1.1) }.map(\.2)
}

struct LongestPrefixFirst: WaitingPolicy {
    func order(_ waiting: [Request], context: SchedulingContext) -> [Request] {
        ordered(waiting) { -context.cachedPrefix($0) }
    }
}

struct LongestOutputFirst: WaitingPolicy {
    func order(_ waiting: [Request], context: SchedulingContext) -> [Request] {
        ordered(waiting) { -$0.params.maxNewTokens }
    }
}

/// A random order that is fixed per request (a seeded draw from its arrival
/// number), not reshuffled every step: with a fresh shuffle per step, page
/// pressure made each step admit a different request whose first chunk
/// the next step's decodes retracted again, and nothing finished.
final class RandomOrder: WaitingPolicy {
    private var rng: RandomSource
    init(seed: UInt64) { rng = RandomSource(seed: seed) }
    func order(_ waiting: [Request], context: SchedulingContext) -> [Request] { waiting.shuffled(using: &rng) }
}

/// Prompts part-way through their chunks are ordered by what remains of
/// them too, so a short prompt that arrives during a long one's chunks goes
/// ahead in the next step instead of waiting for the long one to finish.
struct ShortestPromptFirst: WaitingPolicy {
    var ordersPartialPrefills: Bool { true }
    func order(_ waiting: [Request], context: SchedulingContext) -> [Request] {
        ordered(waiting) { $0.pendingCount - SchedulingContext.agingTokensPerArrival * (context.newestArrival - $0.arrival) }
    }
}

/// SGLang's priority scheduling (`--enable-priority-scheduling`): waiting
/// requests are admitted by priority first — larger values first, or
/// smaller with `--schedule-low-priority-values-first` — and within one
/// priority in the policy's order. A waiting request that cannot start
/// (no running slot, or no pages for its first chunk) preempts running ones
/// whose priority is lower by more than `preemptionThreshold` (SGLang's
/// `--priority-scheduling-preemption-threshold`, 10); nil turns preemption
/// off (`--disable-priority-preemption`).
public struct PriorityScheduling: Sendable, Equatable {
    public var lowValuesFirst: Bool
    /// The priority of a request that gives none (`--default-priority-value`).
    public var defaultValue: Int
    public var preemptionThreshold: Int?

    public init(lowValuesFirst: Bool = false, defaultValue: Int = 0, preemptionThreshold: Int? = 10) {
        self.lowValuesFirst = lowValuesFirst
        self.defaultValue = defaultValue
        self.preemptionThreshold = preemptionThreshold
    }

    /// How urgent `request` is: larger is served first.
    func rank(_ request: Request) -> Int {
        let value = request.priority ?? defaultValue
        return lowValuesFirst ? -value : value
    }

    /// Whether `waiting` may preempt `running`.
    func preempts(_ waiting: Request, _ running: Request) -> Bool {
        guard let preemptionThreshold else { return false }
        return rank(waiting) - rank(running) > preemptionThreshold
    }
}

struct PriorityFirst: WaitingPolicy {
    let inner: any WaitingPolicy
    let scheduling: PriorityScheduling
    var ordersPartialPrefills: Bool { inner.ordersPartialPrefills }

    func order(_ waiting: [Request], context: SchedulingContext) -> [Request] {
        ordered(inner.order(waiting, context: context)) { -scheduling.rank($0) }
    }
}
