import Models

/// What one row of a step's logits is for.
enum LogitUse {
    /// The request's next token.
    case sample(Request)
    /// The logprob of prompt token `tokenIndex`.
    case inputLogprob(Request, tokenIndex: Int)
}

/// One step's work: the forward batch, what each logits row is for, and
/// which requests are in it.
struct ScheduledBatch {
    var batch = ForwardBatch()
    var uses: [LogitUse] = []
    private(set) var members = Set<ObjectIdentifier>()
    /// What the step is made of, for profiles: prompt (extend) work and decode work.
    private(set) var extendRequests = 0
    private(set) var extendTokens = 0
    private(set) var decodeRequests = 0
    /// The PD rooms of the disaggregated requests in it.
    private(set) var rooms: [UInt64] = []

    func contains(_ request: Request) -> Bool { members.contains(ObjectIdentifier(request)) }

    /// Adds `count` of the request's pending tokens, with the logits rows they need.
    mutating func add(_ request: Request, count: Int, pageSize: Int) {
        if request.outputCount == 0, request.promptStartedAt == nil { request.promptStartedAt = .now }
        let start = request.computed
        var logitIndices: [Int] = []
        // Position p's logits predict token p + 1: prompt logprobs need them
        // for every prompt token from the requested start on.
        if let first = request.inputLogprobStart {
            let from = max(start, first - 1), to = min(start + count, request.promptCount - 1)
            for p in stride(from: from, to: to, by: 1) {
                logitIndices.append(p - start)
                uses.append(.inputLogprob(request, tokenIndex: p + 1))
            }
        }
        if start + count == request.tokens.count {
            logitIndices.append(count - 1)
            uses.append(.sample(request))
        }
        batch.append(sequenceTokens: Array(request.tokens[start..<start + count]), startPosition: start,
                     pageTable: request.pages, pageSize: pageSize, logitIndices: logitIndices)
        if request.isDecoding {
            decodeRequests += 1
        } else {
            extendRequests += 1
            extendTokens += count
        }
        if let room = request.room { rooms.append(room) }
        request.computed += count
        members.insert(ObjectIdentifier(request))
    }
}

/// Prompt tokens a step may still run (`--chunked-prefill-size`; decode tokens count too).
struct TokenBudget {
    private(set) var remaining: Int

    init(stepTokens: Int, alreadyScheduled: Int) { remaining = max(1, stepTokens - alreadyScheduled) }

    var isSpent: Bool { remaining <= 0 }
    /// As many of `wanted` tokens as the budget allows.
    func grant(_ wanted: Int) -> Int { min(remaining, wanted) }
    mutating func spend(_ tokens: Int) { remaining -= tokens }
}

/// Answers "what is the next batch?" for continuous batching with chunked
/// prefill: every decoding request gets its next token (retracting the
/// newest requests when pages run out), then the token budget goes to
/// prompts part-way through, then to new requests in the policy's order —
/// or, under a policy that orders partial prompts too (`sprf`), to both in
/// that policy's order.
final class Scheduler {
    private(set) var waiting: [Request] = []
    private(set) var running: [Request] = []
    private let kv: KVCacheManager
    private let policy: any WaitingPolicy
    let maxRunningRequests: Int
    let stepTokens: Int
    /// Requests sent back to the queue because pages ran out, since start.
    private(set) var retractionCount = 0
    /// Running requests sent back to the queue for a more urgent one, since start.
    private(set) var preemptionCount = 0
    private let priority: PriorityScheduling?

    /// The newest arrival number seen (the aging clock of `sprf`).
    private var newestArrival = 0

    init(kv: KVCacheManager, policy: any WaitingPolicy = FirstComeFirstServed(), priority: PriorityScheduling? = nil,
         maxRunningRequests: Int, stepTokens: Int) {
        self.kv = kv
        self.policy = policy
        self.priority = priority
        self.maxRunningRequests = maxRunningRequests
        self.stepTokens = stepTokens
    }

    var hasWork: Bool { !waiting.isEmpty || !running.isEmpty }
    var decodingCount: Int { running.filter(\.isDecoding).count }
    var runningTokenCount: Int { running.reduce(0) { $0 + $1.tokens.count } }

    func enqueue(_ request: Request) {
        newestArrival = max(newestArrival, request.arrival)
        waiting.append(request)
    }
    /// A request whose prompt's KV is already in its pages (decode side of PD).
    func startRunning(_ request: Request) { running.append(request) }

    /// Takes a queued or running request out of scheduling.
    func remove(id: String) -> Request? {
        if let i = waiting.firstIndex(where: { $0.id == id }) { return waiting.remove(at: i) }
        if let i = running.firstIndex(where: { $0.id == id }) { return running.remove(at: i) }
        return nil
    }

    func removeAll() -> [Request] {
        defer { waiting.removeAll(); running.removeAll() }
        return waiting + running
    }

    /// Drops requests that finished during the step.
    func dropFinished() { running.removeAll { $0.finish != nil } }

    /// The next step's batch. `mayStart` gates new requests (a prefill-side
    /// PD request waits until its decode half has said where its KV goes).
    func nextBatch(mayStart: (Request) -> Bool) -> ScheduledBatch {
        var next = ScheduledBatch()
        preemptForTheMostUrgent(mayStart: mayStart)
        scheduleDecodes(into: &next)
        var budget = TokenBudget(stepTokens: stepTokens, alreadyScheduled: next.batch.tokens.count)
        let partial = running.filter { !$0.isDecoding && !next.contains($0) }
        let candidates = policy.ordersPartialPrefills
            ? policy.order(partial + waiting, context: context)
            : partial + policy.order(waiting, context: context)
        // Once one waiting request cannot start, later ones do not jump it; prompts part-way through go on.
        var admitting = true
        for request in candidates where !budget.isSpent {
            if partial.contains(where: { $0 === request }) {
                guard continuePrefill(request, into: &next, budget: &budget) else { break }
            } else if admitting {
                admitting = admit(request, into: &next, budget: &budget, mayStart: mayStart)
            }
        }
        return next
    }

    private var context: SchedulingContext {
        SchedulingContext(cachedPrefix: { [kv] in kv.cachedPrefixLength($0) }, newestArrival: newestArrival)
    }

    private func scheduleDecodes(into next: inout ScheduledBatch) {
        var index = 0
        while index < running.count {
            let request = running[index]
            guard request.isDecoding else { index += 1; continue }
            guard reserve(request, upTo: request.computed + 1, protecting: next) else {
                // Nothing left to retract but this request: it goes back to the queue.
                retract(request)
                continue
            }
            next.add(request, count: 1, pageSize: kv.pageSize)
            // Retraction may have removed requests before this one.
            index = running.firstIndex(where: { $0 === request })! + 1
        }
    }

    /// The next chunk of a prompt part-way through; false when pages ran out (nothing more fits this step).
    private func continuePrefill(_ request: Request, into next: inout ScheduledBatch, budget: inout TokenBudget) -> Bool {
        let count = budget.grant(request.pendingCount)
        guard kv.extend(request, to: request.computed + count) else { return false }
        next.add(request, count: count, pageSize: kv.pageSize)
        budget.spend(count)
        return true
    }

    /// Starts a waiting request with its first chunk; false when nothing more
    /// can start this step (no running slot, or no pages).
    private func admit(_ request: Request, into next: inout ScheduledBatch, budget: inout TokenBudget,
                       mayStart: (Request) -> Bool) -> Bool {
        guard running.count < maxRunningRequests else { return false }
        guard mayStart(request) else { return true }
        kv.admitPrefix(request)
        let count = budget.grant(request.pendingCount)
        // Keep one page of headroom per decoding request so admission
        // does not immediately force a retraction.
        guard kv.extend(request, to: request.computed + count, headroom: decodingCount) else {
            kv.release(request)
            return false
        }
        waiting.removeAll { $0 === request }
        running.append(request)
        next.add(request, count: count, pageSize: kv.pageSize)
        budget.spend(count)
        return true
    }

    /// Priority preemption, before the step is planned (a request already in
    /// the step's batch cannot leave it): while the most urgent waiting
    /// request could not start — no running slot, or no pages for its first
    /// chunk and the decoding requests' headroom — the least urgent running
    /// request it may preempt goes back to the queue (the newest of equals).
    /// PD halves are never preempted: their KV is in flight.
    private func preemptForTheMostUrgent(mayStart: (Request) -> Bool) {
        guard let priority, priority.preemptionThreshold != nil else { return }
        guard let urgent = policy.order(waiting, context: context).first, mayStart(urgent) else { return }
        func blocked() -> Bool {
            let pages = kv.pages(for: min(stepTokens, urgent.pendingCount)) + decodingCount
            return running.count >= maxRunningRequests || kv.freeCount + kv.cachedPageCount < pages
        }
        while blocked() {
            let victims = running.filter { !$0.isDisaggregated && priority.preempts(urgent, $0) }
            guard let victim = victims.min(by: { priority.rank($0) < priority.rank($1) || (priority.rank($0) == priority.rank($1) && $0.arrival > $1.arrival) }) else { return }
            retract(victim, preempted: true)
        }
    }

    /// Pages for positions 0..<end, retracting the newest requests not in this step when needed.
    private func reserve(_ request: Request, upTo end: Int, protecting next: ScheduledBatch) -> Bool {
        while !kv.extend(request, to: end) {
            guard let victim = running.last(where: { $0 !== request && !next.contains($0) }) else { return false }
            retract(victim)
        }
        return true
    }

    /// Frees a running request's pages and queues it first in line; it will
    /// recompute its KV (through the prefix cache where it can).
    private func retract(_ request: Request, preempted: Bool = false) {
        running.removeAll { $0 === request }
        kv.release(request)
        waiting.insert(request, at: 0)
        if preempted { preemptionCount += 1 } else { retractionCount += 1 }
    }
}
