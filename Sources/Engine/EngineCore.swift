import Kernels
import Models
import Profiling
import Tokenization

/// The synchronous heart of the engine: admits requests, asks the
/// scheduler for each step's batch, runs the model, samples, and hands
/// disaggregated requests to the side-car at their edges. Single-threaded;
/// `Engine` drives it from its own thread.
///
/// Who owns a page: a queued or running request (through the scheduler and
/// `KVCacheManager`), the prefix cache, a request in the prefill's inflight
/// queue (its transfer still reads the pages), or a decode-side lease (a
/// peer may still write them). Nothing else; `PageCustody` says which.
public final class EngineCore {
    public let model: any CausalLM
    public let tokenizer: Tokenizer
    public let options: EngineOptions
    public let storage: PagedKVStorage
    private let kv: KVCacheManager
    private let scheduler: Scheduler
    private let output: OutputProcessor
    private let pool: ComputePool
    /// Decode side: requests waiting for their prompt's KV from a prefill instance.
    private var parked: [String: Request] = [:]
    /// Prefill side: requests that ended but whose pages transfer jobs still read (inflight queue).
    private var inflight: [String: Request] = [:]
    /// Decode side: pages of ended requests that a peer may still write, by request id.
    private var leases: [String: [Int32]] = [:]
    /// The disaggregation side-car, if this instance is a prefill or decode one.
    public var hooks: EngineHooks?
    /// `/start_profile`'s recorder: steps, forward kernels and request spans (the side-car records its own).
    public let profiler = Profiler()
    private var finishedNow: [RequestUpdate] = []
    private var arrivals = 0
    public let contextLength: Int

    public init(model: any CausalLM, tokenizer: Tokenizer, options: EngineOptions) throws {
        self.model = model
        self.tokenizer = tokenizer
        self.options = options
        let spec = model.kvCacheSpec(dtype: options.kvCacheDType)
        let tokens = options.maxTotalTokens ?? max(options.pageSize, options.kvCacheBudgetBytes / spec.bytesPerToken)
        let pageCount = max(1, tokens / options.pageSize)
        storage = try PagedKVStorage(spec: spec, pageCount: pageCount, pageSize: options.pageSize, sharedMemoryPath: options.kvSharedMemoryPath)
        kv = KVCacheManager(pageCount: pageCount, pageSize: options.pageSize, enablePrefixCache: options.enablePrefixCache)
        scheduler = Scheduler(kv: kv, policy: options.schedulePolicy.makeWaitingPolicy(priority: options.priorityScheduling),
                              priority: options.priorityScheduling, maxRunningRequests: options.maxRunningRequests,
                              stepTokens: options.chunkedPrefillSize)
        output = OutputProcessor(eosTokens: Set((model.config.eosTokenIds + tokenizer.eosTokenIds).map { Int32($0) }))
        pool = ComputePool(threads: options.threads)
        contextLength = options.contextLength ?? model.config.maxPositionEmbeddings
    }

    // MARK: state

    /// Something to compute or report now.
    public var hasWork: Bool { scheduler.hasWork || !finishedNow.isEmpty }
    /// Requests waiting on transfers: the loop keeps polling the side-car for them.
    public var hasPendingTransfers: Bool { !parked.isEmpty || !inflight.isEmpty || !leases.isEmpty }
    public var parkedCount: Int { parked.count }
    public var inflightCount: Int { inflight.count }
    /// Pages leased to the side-car after their requests ended.
    public var leasedPageCount: Int { leases.values.reduce(0) { $0 + $1.count } }
    public var waitingCount: Int { scheduler.waiting.count }
    public var runningCount: Int { scheduler.running.count }
    public var freePageCount: Int { kv.freeCount }
    public var totalPageCount: Int { kv.pageCount }
    /// Pages held only by the prefix cache (reclaimable).
    public var cachedPageCount: Int { kv.cachedPageCount }
    /// Requests sent back to the queue because pages ran out, since start.
    public var retractionCount: Int { scheduler.retractionCount }
    /// Running requests sent back to the queue for a more urgent one, since start.
    public var preemptionCount: Int { scheduler.preemptionCount }
    /// Tokens in the running batch (for load reports).
    public var runningTokenCount: Int { scheduler.runningTokenCount }
    public var allocator: PageAllocator { kv.allocator }
    public var allocatorInvariantsHold: Bool { kv.allocator.invariantsHold }

    // MARK: requests

    /// Why the engine would refuse `input`, checked against fixed limits
    /// only, so it is safe to call from any thread before submitting.
    public func refusal(for input: GenerateInput) -> InvalidRequest? {
        let input = applyingPDRules(input)
        do { try input.params.validate() } catch { return error }
        guard !input.promptTokens.isEmpty else { return InvalidRequest("the prompt is empty") }
        if input.priority != nil, options.priorityScheduling == nil {
            return InvalidRequest("'priority' needs priority scheduling, which this server runs without (start it with --enable-priority-scheduling)")
        }
        let vocab = model.config.vocabSize
        if let bad = input.promptTokens.first(where: { $0 < 0 || $0 >= vocab }) {
            return InvalidRequest("token id \(bad) is outside the vocabulary (0..<\(vocab))")
        }
        if let bad = input.params.logitBias.keys.first(where: { $0 >= vocab }) {
            return InvalidRequest("logit_bias names token \(bad), outside the vocabulary (0..<\(vocab))")
        }
        if let bad = input.params.stopTokenIds.first(where: { $0 >= vocab }) {
            return InvalidRequest("stop_token_ids names token \(bad), outside the vocabulary (0..<\(vocab))")
        }
        // Saturating: validate() bounds max_new_tokens, but this sum must not trap whoever calls.
        let (sum, overflow) = input.promptTokens.count.addingReportingOverflow(input.params.maxNewTokens)
        let total = overflow ? Int.max : sum
        guard total <= contextLength else {
            return InvalidRequest("this model's context length is \(contextLength) tokens, but the request needs \(total) (\(input.promptTokens.count) prompt + \(input.params.maxNewTokens) max new tokens)")
        }
        guard total <= kvCapacity else {
            return InvalidRequest("the request needs \(total) tokens of KV cache but the pool holds only \(kvCapacity) (raise --max-total-tokens)")
        }
        return nil
    }


    /// The half of a disaggregated request this instance runs: a prefill computes the first token only.
    private func applyingPDRules(_ input: GenerateInput) -> GenerateInput {
        guard input.bootstrap != nil, hooks?.generatesFirstTokenOnly == true else { return input }
        var input = input
        input.params.maxNewTokens = min(input.params.maxNewTokens, 1)
        return input
    }

    /// Tokens the whole KV pool holds.
    public var kvCapacity: Int { storage.pageCount * options.pageSize }

    /// Queues a request, or refuses it with a message a client can act on.
    public func add(_ input: GenerateInput) throws(InvalidRequest) {
        if let refusal = refusal(for: input) { throw refusal }
        let input = applyingPDRules(input)
        let request = Request(input: input, arrival: arrivals, tokenizer: tokenizer)
        arrivals += 1
        if input.params.maxNewTokens == 0 {
            finish(request, .length)
        } else if input.bootstrap != nil, let hooks, hooks.admission(for: input) == .park {
            parked[input.id] = request
        } else {
            scheduler.enqueue(request)
        }
    }

    /// Stops a request wherever it is; its pages are freed at once (or handed to the side-car).
    public func abort(id: String, message: String = "aborted") {
        abort(id: id, reason: .abort(message: message))
    }

    /// Ends a request wherever it is with `reason` (an abort or a failure).
    public func abort(id: String, reason: FinishReason) {
        if let request = scheduler.remove(id: id) ?? parked.removeValue(forKey: id) {
            finish(request, reason)
        } else if let request = inflight[id] {
            // Already ended; the side-car stops its transfer and finishes it.
            request.finish = reason
            _ = hooks?.ending(id: id, reason: reason)
        }
    }

    /// Aborts everything (shutdown).
    public func abortAll(message: String) {
        for request in scheduler.removeAll() + Array(parked.values) { finish(request, .abort(message: message)) }
        parked.removeAll()
        for id in inflight.keys { abort(id: id, message: message) }
    }

    /// Drops prefix-cache pages no request uses.
    public func flushCache() { kv.flush() }

    // MARK: disaggregation (called by the side-car on the engine thread)

    /// Decode side: pages for a parked request's whole prompt, or nil (try
    /// again later) when they would eat the reserve of the requests that
    /// decode or hold pages here (`reservedDecodeTokens`), this one's
    /// included, so admitting it never forces a retraction. (How many run at
    /// once is the side-car's activation gate: KV may arrive ahead of a slot.)
    public func preallocate(id: String) -> [Int32]? {
        guard let request = parked[id] else { return nil }
        if !request.pages.isEmpty { return request.pages }
        let holders = scheduler.running + parked.values.filter { !$0.pages.isEmpty }
        // Alone, a request needs only its prompt's pages: the refusal check
        // lets in any request whose prompt fits the empty pool.
        let reserve = holders.isEmpty ? 0 : holders.reduce(reservedPages(for: request, holding: kv.pages(for: request.promptCount))) {
            $0 + reservedPages(for: $1, holding: $1.pages.count)
        }
        guard kv.extend(request, to: request.promptCount, headroom: reserve) else { return nil }
        return request.pages
    }

    /// Pages `request` still needs for its next `reservedDecodeTokens` output
    /// tokens (at least the next one), beyond the `holding` it has.
    private func reservedPages(for request: Request, holding: Int) -> Int {
        let left = request.params.maxNewTokens - request.outputCount
        let tokens = max(request.tokens.count, request.promptCount) + max(1, min(left, options.reservedDecodeTokens))
        return max(0, kv.pages(for: tokens) - holding)
    }

    /// Decode side: the prompt's KV arrived in the preallocated pages; the
    /// request joins the running batch with the first token the prefill sampled.
    public func activate(id: String, firstToken: Int, logprob: TokenLogprob?, phases: RequestPhases = RequestPhases()) {
        guard let request = parked.removeValue(forKey: id) else { return }
        request.transferPhases = phases
        precondition(firstToken >= 0 && firstToken < model.config.vocabSize, "the side-car validates first tokens")
        request.computed = request.promptCount
        finishedNow.append(accept(request, token: firstToken, logprob: logprob))
        if request.finish == nil { scheduler.startRunning(request) }
    }

    /// Decode side: the transfer failed; the request ends with `failure`.
    public func abandon(id: String, failure: RequestFailure) {
        guard let request = parked.removeValue(forKey: id) else { return }
        finish(request, .failed(failure))
    }

    /// Prefill side: the transfer jobs of a request in the inflight queue are
    /// done; its pages are freed and its end reported now. `failure` turns
    /// the end into a failure (the KV did not make it).
    public func finishInflight(id: String, failure: RequestFailure? = nil, phases: RequestPhases = RequestPhases()) {
        guard let request = inflight.removeValue(forKey: id) else { return }
        if let failure, request.finish?.message == nil { request.finish = .failed(failure) }
        request.transferPhases = phases
        kv.release(request)
        finishedNow.append(finalUpdate(for: request))
    }

    /// Decode side: nothing can write into a leased request's pages any more; they are free again.
    public func returnLease(id: String) {
        guard let pages = leases.removeValue(forKey: id) else { return }
        kv.releaseDetached(pages)
    }

    // MARK: stepping

    /// Runs one batch (if any) and returns what changed for each request.
    public func step() -> [RequestUpdate] {
        let began = TraceClock.now()
        hooks?.willStep(self)
        let next = scheduler.nextBatch { [hooks] request in
            !request.isDisaggregated || hooks?.mayPrefill(id: request.id) != false
        }
        var updates = finishedNow
        finishedNow.removeAll()
        guard !next.batch.tokens.isEmpty else { return updates }
        let trace = profiler.beginStep()
        defer { profiler.endStep(recorded: trace != nil) }
        trace?.span("schedule", category: "engine", from: began)

        let logits = model.forward(next.batch, cache: storage, pool: pool, trace: trace)
        // The side-car sends fresh KV before it hears of any sampled token.
        if let hooks {
            for request in scheduler.running where request.isDisaggregated && next.contains(request) {
                hooks.computedKV(id: request.id, pages: request.pages, computed: request.computed, promptCount: request.promptCount)
            }
        }
        let sampling = TraceClock.now()
        let vocab = model.config.vocabSize
        for (row, use) in next.uses.enumerated() {
            let slice = logits[row * vocab..<(row + 1) * vocab]
            switch use {
            case .sample(let request):
                var allowed: AllowedTokens?
                switch output.allowedTokens(for: request) {
                case .unconstrained: break
                case .allowed(let tokens): allowed = tokens
                case .stuck(let why):
                    finish(request, .abort(message: why))
                    continue
                }
                let (token, logprob) = Sampler.sample(logits: slice, params: request.params, promptTokens: Array(request.promptTokens),
                                                      outputTokens: Array(request.outputTokens), heldBack: output.heldBack(for: request),
                                                      allowed: allowed, rng: &request.rng)
                if request.isDisaggregated, request.outputCount == 0 {
                    hooks?.sampledFirstToken(id: request.id, token: token, logprob: logprob)
                }
                updates.append(accept(request, token: token, logprob: logprob))
            case let .inputLogprob(request, tokenIndex):
                let token = Int(request.tokens[tokenIndex])
                request.inputLogprobs[tokenIndex] = Sampler.logprobs(of: slice, token: token, top: request.params.topLogprobs)
            }
        }
        scheduler.dropFinished()
        if let trace {
            trace.span("sample", category: "engine", from: sampling, args: ["rows": .int(next.uses.count)])
            var args: [String: TraceValue] = [
                "tokens": .int(next.batch.tokens.count), "extend_requests": .int(next.extendRequests),
                "extend_tokens": .int(next.extendTokens), "decode_requests": .int(next.decodeRequests),
                "running": .int(scheduler.running.count), "waiting": .int(scheduler.waiting.count),
            ]
            if !next.rooms.isEmpty { args["bootstrap_rooms"] = .uints(next.rooms) }
            trace.span(next.extendRequests > 0 ? "step (extend)" : "step (decode)", category: "engine", from: began, args: args)
        }
        return updates
    }

    // MARK: ends

    /// The output processor's verdict on a new token, and the request's end if it came.
    private func accept(_ request: Request, token: Int, logprob: TokenLogprob?) -> RequestUpdate {
        if request.firstTokenAt == nil { request.firstTokenAt = .now }
        var update = output.accept(request, token: token, logprob: logprob)
        if let reason = request.finish, handOver(request, reason) {
            // Reported by finishInflight once the transfer lets go of the pages.
            update.textDelta = OutputProcessor.takeText(request)
            return update
        }
        update.textDelta = OutputProcessor.takeText(request)
        update.finish = request.finish
        if request.finish != nil {
            update.phases = phases(of: request)
            traceEnd(of: request)
            kv.release(request)
        }
        return update
    }

    /// Ends a request outside a step (abort, zero tokens) and reports it next step.
    private func finish(_ request: Request, _ reason: FinishReason) {
        request.finish = reason
        if handOver(request, reason) { return }
        kv.release(request)
        finishedNow.append(finalUpdate(for: request))
    }

    private func finalUpdate(for request: Request) -> RequestUpdate {
        var update = OutputProcessor.finalUpdate(for: request)
        update.phases = phases(of: request)
        traceEnd(of: request)
        return update
    }

    /// While profiling, an ended request becomes a span with its phases
    /// inside, on its PD room's track (shared with the side-car's spans of
    /// the room) or, for a unified request, on a track of its own.
    private func traceEnd(of request: Request) {
        guard let trace = profiler.recorder else { return }
        let end = TraceClock.now(), arrived = TraceClock.time(of: request.arrivedAt)
        let category = request.room == nil ? "request" : TraceMerge.roomCategory
        let id = request.room ?? TraceIDs.id(of: request.id)
        var args: [String: TraceValue] = ["rid": .string(request.name), "id": .string(request.id), "prompt_tokens": .int(request.promptCount),
                                          "output_tokens": .int(request.outputCount),
                                          "finish": .string(request.finish?.name ?? "none")]
        if let room = request.room { args["bootstrap_room"] = .uint(room) }
        let name = !request.isDisaggregated ? "request" : isPrefillHalf(request) ? "prefill request" : "decode request"
        trace.asyncSpan(name, category: category, id: id, from: arrived, to: end, args: args)
        let firstToken = request.firstTokenAt.map(TraceClock.time(of:))
        if let started = request.promptStartedAt.map(TraceClock.time(of:)) {
            trace.asyncSpan("queue_wait", category: category, id: id, from: arrived, to: started)
            trace.asyncSpan("prefill_compute", category: category, id: id, from: started, to: firstToken ?? end)
        }
        if let firstToken, !isPrefillHalf(request) {
            trace.asyncSpan("decode", category: category, id: id, from: firstToken, to: end)
        }
    }

    /// A PD prefill's request ends at its first token: it has no decode phase.
    private func phases(of request: Request) -> RequestPhases {
        request.phases(decodes: !isPrefillHalf(request))
    }

    private func isPrefillHalf(_ request: Request) -> Bool { request.isDisaggregated && hooks?.generatesFirstTokenOnly == true }

    /// Asks the side-car who keeps an ending request's pages. Returns true
    /// when the engine must not report the end yet (inflight).
    private func handOver(_ request: Request, _ reason: FinishReason) -> Bool {
        guard request.isDisaggregated, let hooks else { return false }
        let ending = hooks.ending(id: request.id, reason: reason)
        if let phases = ending.phases { request.transferPhases = phases }
        switch ending.custody {
        case .engine:
            return false
        case .inflight:
            inflight[request.id] = request
            return true
        case .leased:
            // The bytes in these pages may be half written: they go neither
            // to the allocator nor to the prefix cache until the lease ends.
            leases[request.id] = kv.detach(request)
            return false
        }
    }
}
