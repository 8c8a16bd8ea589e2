import Kernels
import Models
import Tokenization

/// What one row of a step's logits is for.
enum LogitUse {
    /// The request's next token.
    case sample(Request)
    /// The logprob of prompt token `tokenIndex`.
    case inputLogprob(Request, tokenIndex: Int)
}

/// The synchronous heart of the engine: admits requests, picks each step's
/// batch (continuous batching with chunked prefill), runs the model and
/// samples. Single-threaded; `Engine` drives it from its own thread.
public final class EngineCore {
    public let model: LlamaModel
    public let tokenizer: Tokenizer
    public let options: EngineOptions
    public let storage: PagedKVStorage
    public private(set) var allocator: PageAllocator
    private let prefixCache: PrefixCache
    private let pool: ComputePool
    private var waiting: [Request] = []
    private var running: [Request] = []
    /// Decode side: requests waiting for their prompt's KV from a prefill instance.
    private var parked: [String: Request] = [:]
    /// Prefill side: requests that ended but whose pages transfer jobs still read (inflight queue).
    private var inflight: [String: Request] = [:]
    /// Decode side: pages of ended requests that a peer may still write, by request id.
    private var leases: [String: [Int32]] = [:]
    /// The disaggregation side-car, if this instance is a prefill or decode one.
    public var hooks: EngineHooks?
    private var finishedNow: [RequestUpdate] = []
    private var arrivals = 0
    private let eosTokens: Set<Int32>
    public let contextLength: Int

    public init(model: LlamaModel, tokenizer: Tokenizer, options: EngineOptions) throws {
        self.model = model
        self.tokenizer = tokenizer
        self.options = options
        let bytesPerToken = 2 * model.config.layerCount * model.kvWidth * options.kvCacheDType.size
        let tokens = options.maxTotalTokens ?? max(options.pageSize, options.kvCacheBudgetBytes / bytesPerToken)
        let pageCount = max(1, tokens / options.pageSize)
        storage = try PagedKVStorage(layers: model.config.layerCount, pageCount: pageCount, pageSize: options.pageSize,
                                     width: model.kvWidth, dtype: options.kvCacheDType, sharedMemoryPath: options.kvSharedMemoryPath)
        allocator = PageAllocator(pageCount: pageCount)
        prefixCache = PrefixCache(pageSize: options.pageSize)
        pool = ComputePool(threads: options.threads)
        eosTokens = Set((model.config.eosTokenIds + tokenizer.eosTokenIds).map { Int32($0) })
        contextLength = options.contextLength ?? model.config.maxPositionEmbeddings
    }

    // MARK: state

    /// Something to compute or report now.
    public var hasWork: Bool { !waiting.isEmpty || !running.isEmpty || !finishedNow.isEmpty }
    /// Requests waiting on transfers: the loop keeps polling the side-car for them.
    public var hasPendingTransfers: Bool { !parked.isEmpty || !inflight.isEmpty || !leases.isEmpty }
    public var parkedCount: Int { parked.count }
    public var inflightCount: Int { inflight.count }
    /// Pages leased to the side-car after their requests ended.
    public var leasedPageCount: Int { leases.values.reduce(0) { $0 + $1.count } }
    public var waitingCount: Int { waiting.count }
    public var runningCount: Int { running.count }
    public var freePageCount: Int { allocator.freeCount }
    public var totalPageCount: Int { allocator.pageCount }
    /// Pages held only by the prefix cache (reclaimable).
    public var cachedPageCount: Int { prefixCache.cachedPageCount }
    /// Requests sent back to the queue because pages ran out, since start.
    public private(set) var retractionCount = 0
    /// Tokens in the running batch (for load reports).
    public var runningTokenCount: Int { running.reduce(0) { $0 + $1.tokens.count } }

    // MARK: requests

    /// Why the engine would refuse `input`, checked against fixed limits
    /// only, so it is safe to call from any thread before submitting.
    public func refusal(for input: GenerateInput) -> InvalidRequest? {
        do { try input.params.validate() } catch { return error }
        guard !input.promptTokens.isEmpty else { return InvalidRequest("the prompt is empty") }
        let vocab = model.config.vocabSize
        if let bad = input.promptTokens.first(where: { $0 < 0 || $0 >= vocab }) {
            return InvalidRequest("token id \(bad) is outside the vocabulary (0..<\(vocab))")
        }
        let total = input.promptTokens.count + input.params.maxNewTokens
        guard total <= contextLength else {
            return InvalidRequest("this model's context length is \(contextLength) tokens, but the request needs \(total) (\(input.promptTokens.count) prompt + \(input.params.maxNewTokens) max new tokens)")
        }
        guard total <= kvCapacity else {
            return InvalidRequest("the request needs \(total) tokens of KV cache but the pool holds only \(kvCapacity) (raise --max-total-tokens)")
        }
        return nil
    }

    /// Tokens the whole KV pool holds.
    public var kvCapacity: Int { storage.pageCount * options.pageSize }

    /// Queues a request, or refuses it with a message a client can act on.
    public func add(_ input: GenerateInput) throws(InvalidRequest) {
        if let refusal = refusal(for: input) { throw refusal }
        let request = Request(input: input, arrival: arrivals, tokenizer: tokenizer)
        arrivals += 1
        if input.params.maxNewTokens == 0 {
            finish(request, .length)
        } else if input.bootstrap != nil, let hooks, hooks.admission(for: input) == .park {
            parked[input.id] = request
        } else {
            waiting.append(request)
        }
    }

    /// Stops a request wherever it is; its pages are freed at once (or handed to the side-car).
    public func abort(id: String, message: String = "aborted") {
        abort(id: id, reason: .abort(message: message))
    }

    /// Ends a request wherever it is with `reason` (an abort or a failure).
    public func abort(id: String, reason: FinishReason) {
        if let i = waiting.firstIndex(where: { $0.id == id }) {
            finish(waiting.remove(at: i), reason)
        } else if let i = running.firstIndex(where: { $0.id == id }) {
            finish(running.remove(at: i), reason)
        } else if let request = parked.removeValue(forKey: id) {
            finish(request, reason)
        } else if let request = inflight[id] {
            // Already ended; the side-car stops its transfer and finishes it.
            request.finish = reason
            _ = hooks?.ending(id: id, reason: reason)
        }
    }

    /// Aborts everything (shutdown).
    public func abortAll(message: String) {
        for r in waiting + running + Array(parked.values) { finish(r, .abort(message: message)) }
        waiting.removeAll()
        running.removeAll()
        parked.removeAll()
        for id in inflight.keys { abort(id: id, message: message) }
    }

    // MARK: disaggregation (called by the side-car on the engine thread)

    /// Decode side: pages for a parked request's whole prompt, or nil when
    /// they would eat the headroom running requests need (try again later).
    public func preallocate(id: String) -> [Int32]? {
        guard let request = parked[id] else { return nil }
        if !request.pages.isEmpty { return request.pages }
        let needed = (request.promptCount + options.pageSize - 1) / options.pageSize
        let headroom = running.filter(\.isDecoding).count
        if allocator.freeCount < needed + headroom {
            prefixCache.evict(needed + headroom - allocator.freeCount, allocator: &allocator)
        }
        guard allocator.freeCount >= needed + headroom, let pages = allocator.allocate(needed) else { return nil }
        request.pages = pages
        return pages
    }

    /// Decode side: the prompt's KV arrived in the preallocated pages; the
    /// request joins the running batch with the first token the prefill sampled.
    public func activate(id: String, firstToken: Int, logprob: TokenLogprob?) {
        guard let request = parked.removeValue(forKey: id) else { return }
        precondition(firstToken >= 0 && firstToken < model.config.vocabSize, "the side-car validates first tokens")
        request.computed = request.promptCount
        let update = accept(request, token: firstToken, logprob: logprob)
        finishedNow.append(update)
        if request.finish == nil { running.append(request) }
    }

    /// Decode side: the transfer failed; the request ends with `failure`.
    public func abandon(id: String, failure: RequestFailure) {
        guard let request = parked.removeValue(forKey: id) else { return }
        finish(request, .failed(failure))
    }

    /// Prefill side: the transfer jobs of a request in the inflight queue are
    /// done; its pages are freed and its end reported now. `failure` turns
    /// the end into a failure (the KV did not make it).
    public func finishInflight(id: String, failure: RequestFailure? = nil) {
        guard let request = inflight.removeValue(forKey: id) else { return }
        if let failure, request.finish?.message == nil { request.finish = .failed(failure) }
        releasePages(request)
        var update = makeUpdate(request)
        update.finish = request.finish
        update.textDelta = takeText(request)
        finishedNow.append(update)
    }

    /// Decode side: nothing can write into a leased request's pages any more; they are free again.
    public func returnLease(id: String) {
        guard let pages = leases.removeValue(forKey: id) else { return }
        allocator.release(pages)
    }

    /// Asks the side-car who keeps an ending request's pages. Returns true
    /// when the engine must not report the end yet (inflight).
    private func handOver(_ request: Request, _ reason: FinishReason) -> Bool {
        guard request.isDisaggregated, let hooks else { return false }
        switch hooks.ending(id: request.id, reason: reason) {
        case .engine:
            return false
        case .inflight:
            inflight[request.id] = request
            return true
        case .leased:
            // The bytes in these pages may be half-written: they go neither
            // to the allocator nor to the prefix cache until the lease ends.
            leases[request.id] = request.pages
            request.pages = []
            request.computed = 0
            return false
        }
    }

    /// Drops prefix-cache pages no request uses.
    public func flushCache() {
        prefixCache.flush(allocator: &allocator)
    }

    public var allocatorInvariantsHold: Bool { allocator.invariantsHold }

    // MARK: stepping

    /// Runs one batch (if any) and returns what changed for each request.
    public func step() -> [RequestUpdate] {
        hooks?.willStep(self)
        var batch = ForwardBatch()
        var uses: [LogitUse] = []
        var scheduled = Set<ObjectIdentifier>()
        scheduleDecodes(into: &batch, uses: &uses, scheduled: &scheduled)
        schedulePrefills(into: &batch, uses: &uses, scheduled: &scheduled)

        var updates = finishedNow
        finishedNow.removeAll()
        guard !batch.tokens.isEmpty else { return updates }

        let logits = model.forward(batch, cache: storage, pool: pool)
        // The side-car sends fresh KV before it hears of any sampled token.
        if let hooks {
            for request in running where request.isDisaggregated && scheduled.contains(ObjectIdentifier(request)) {
                hooks.computedKV(id: request.id, pages: request.pages, computed: request.computed, promptCount: request.promptCount)
            }
        }
        let vocab = model.config.vocabSize
        for (row, use) in uses.enumerated() {
            let slice = logits[row * vocab..<(row + 1) * vocab]
            switch use {
            case .sample(let request):
                updates.append(advance(request, logits: slice))
            case let .inputLogprob(request, tokenIndex):
                let token = Int(request.tokens[tokenIndex])
                request.inputLogprobs[tokenIndex] = Sampler.logprobs(of: slice, token: token, top: request.params.topLogprobs)
            }
        }
        running.removeAll { $0.finish != nil }
        return updates
    }

    /// Every decoding request gets its next token into the batch, retracting
    /// the newest requests when pages run out.
    private func scheduleDecodes(into batch: inout ForwardBatch, uses: inout [LogitUse], scheduled: inout Set<ObjectIdentifier>) {
        var index = 0
        while index < running.count {
            let request = running[index]
            guard request.isDecoding else { index += 1; continue }
            if !reservePages(request, upTo: request.computed + 1, protecting: scheduled) {
                // Nothing left to retract but this request: it goes back to the queue.
                retract(request)
                continue
            }
            add(request, count: 1, to: &batch, uses: &uses)
            scheduled.insert(ObjectIdentifier(request))
            // Retraction may have removed requests before this one.
            index = running.firstIndex(where: { $0 === request })! + 1
        }
    }

    /// Fills the rest of the token budget with prompt chunks: first requests
    /// already part-way through their prompt, then new ones.
    private func schedulePrefills(into batch: inout ForwardBatch, uses: inout [LogitUse], scheduled: inout Set<ObjectIdentifier>) {
        var budget = max(1, options.chunkedPrefillSize - batch.tokens.count)
        for request in running where !request.isDecoding && !scheduled.contains(ObjectIdentifier(request)) && budget > 0 {
            let count = min(budget, request.pendingCount)
            guard reservePages(request, upTo: request.computed + count, protecting: scheduled, mayRetract: false) else { break }
            add(request, count: count, to: &batch, uses: &uses)
            scheduled.insert(ObjectIdentifier(request))
            budget -= count
        }
        var index = 0
        while budget > 0, index < waiting.count, running.count < options.maxRunningRequests {
            let request = waiting[index]
            // A prefill-side PD request waits until its decode half has registered.
            if request.isDisaggregated, let hooks, !hooks.mayPrefill(id: request.id) {
                index += 1
                continue
            }
            admitPrefix(request)
            let count = min(budget, request.pendingCount)
            // Keep one page of headroom per decoding request so admission
            // does not immediately force a retraction.
            let headroom = running.filter(\.isDecoding).count
            guard reservePages(request, upTo: request.computed + count, protecting: scheduled, mayRetract: false, headroom: headroom) else {
                releasePages(request)
                break
            }
            waiting.remove(at: index)
            running.append(request)
            add(request, count: count, to: &batch, uses: &uses)
            scheduled.insert(ObjectIdentifier(request))
            budget -= count
        }
    }

    private func add(_ request: Request, count: Int, to batch: inout ForwardBatch, uses: inout [LogitUse]) {
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
                     pageTable: request.pages, pageSize: options.pageSize, logitIndices: logitIndices)
        request.computed += count
    }

    /// Starts a request from the longest cached prefix of its tokens.
    private func admitPrefix(_ request: Request) {
        guard options.enablePrefixCache, request.pages.isEmpty else { return }
        // At least one token must run through the model to produce logits,
        // and prompt logprobs need the positions they are asked from.
        var matchable = Array(request.tokens.dropLast())
        if let first = request.inputLogprobStart { matchable = Array(matchable.prefix(max(0, first - 1))) }
        request.pages = prefixCache.match(matchable, allocator: &allocator)
        request.computed = request.pages.count * options.pageSize
        if request.outputCount == 0 { request.cachedTokenCount = request.computed }
    }

    /// Ensures `request` has pages for positions 0..<end, evicting cached
    /// pages and (if allowed) retracting the newest unscheduled requests.
    private func reservePages(_ request: Request, upTo end: Int, protecting scheduled: Set<ObjectIdentifier>,
                              mayRetract: Bool = true, headroom: Int = 0) -> Bool {
        let needed = (end + options.pageSize - 1) / options.pageSize - request.pages.count
        guard needed > 0 else { return true }
        while allocator.freeCount < needed + headroom {
            let shortfall = needed + headroom - allocator.freeCount
            if prefixCache.evict(shortfall, allocator: &allocator) > 0 { continue }
            guard mayRetract, let victim = running.last(where: { $0 !== request && !scheduled.contains(ObjectIdentifier($0)) }) else {
                return false
            }
            retract(victim)
        }
        request.pages += allocator.allocate(needed)!
        return true
    }

    /// Frees a running request's pages and queues it first in line; it will
    /// recompute its KV (through the prefix cache where it can).
    private func retract(_ request: Request) {
        running.removeAll { $0 === request }
        releasePages(request)
        waiting.insert(request, at: 0)
        retractionCount += 1
    }

    /// Offers the request's computed full pages to the prefix cache, then drops its references.
    private func releasePages(_ request: Request) {
        if options.enablePrefixCache {
            prefixCache.insert(Array(request.tokens[..<request.computed]), pages: request.pages, allocator: &allocator)
        }
        allocator.release(request.pages)
        request.pages = []
        request.computed = 0
    }

    /// Appends the sampled token and decides whether the request is done.
    private func advance(_ request: Request, logits: ArraySlice<Float>) -> RequestUpdate {
        let (token, logprob) = Sampler.sample(logits: logits, params: request.params, promptTokens: Array(request.promptTokens),
                                              outputTokens: Array(request.outputTokens), rng: &request.rng)
        if request.isDisaggregated, request.outputCount == 0 {
            hooks?.sampledFirstToken(id: request.id, token: token, logprob: logprob)
        }
        return accept(request, token: token, logprob: logprob)
    }

    /// Appends a token (sampled here or by a prefill instance) and decides whether the request is done.
    private func accept(_ request: Request, token: Int, logprob: TokenLogprob?) -> RequestUpdate {
        request.append(Int32(token))
        var update = makeUpdate(request)
        update.newTokens = [token]
        if request.outputCount == 1 { update.inputLogprobs = request.orderedInputLogprobs }
        if let logprob { update.newLogprobs = [logprob] }

        if request.params.stopTokenIds.contains(token) || (!request.params.ignoreEOS && eosTokens.contains(Int32(token))) {
            // The stop token's own text is not part of the output.
            request.finish = .stop(matched: nil)
            request.text += request.detokenizer.finish()
        } else {
            let delta = request.detokenizer.append(token)
            request.text += delta
            if let stop = cutAtStopString(request, newBytes: delta.utf8.count) {
                request.finish = .stop(matched: stop)
            } else if request.outputCount >= request.params.maxNewTokens {
                request.finish = .length
                request.text += request.detokenizer.finish()
            }
        }
        update.completionTokenCount = request.outputCount
        if let reason = request.finish, handOver(request, reason) {
            // Reported by finishInflight once the transfer lets go of the pages.
            update.textDelta = takeText(request)
            return update
        }
        update.textDelta = takeText(request)
        update.finish = request.finish
        if request.finish != nil { releasePages(request) }
        return update
    }

    /// If a stop string occurs in the newest text, cuts the text before it and returns it.
    private func cutAtStopString(_ request: Request, newBytes: Int) -> String? {
        guard newBytes > 0, !request.params.stopStrings.isEmpty else { return nil }
        let bytes = Array(request.text.utf8)
        for stop in request.params.stopStrings {
            let s = Array(stop.utf8)
            // Only a match that overlaps the new text can be new.
            let first = max(0, bytes.count - newBytes - s.count + 1)
            guard bytes.count >= s.count, first <= bytes.count - s.count else { continue }
            for start in first...(bytes.count - s.count) where bytes[start..<start + s.count].elementsEqual(s) {
                request.text = String(decoding: bytes[..<start], as: UTF8.self)
                return stop
            }
        }
        return nil
    }

    /// The part of the text that is safe to stream: everything, once
    /// finished; otherwise all but a tail that could still grow into a stop string.
    private func takeText(_ request: Request) -> String {
        let bytes = Array(request.text.utf8)
        var end = bytes.count
        if request.finish == nil {
            for stop in request.params.stopStrings {
                let s = Array(stop.utf8)
                for length in stride(from: min(s.count - 1, bytes.count), to: 0, by: -1)
                where bytes[(bytes.count - length)...].elementsEqual(s[..<length]) {
                    end = min(end, bytes.count - length)
                    break
                }
            }
        }
        guard end > request.emittedBytes else { return "" }
        let delta = String(decoding: bytes[request.emittedBytes..<end], as: UTF8.self)
        request.emittedBytes = end
        return delta
    }

    private func makeUpdate(_ request: Request) -> RequestUpdate {
        RequestUpdate(id: request.id, promptTokenCount: request.promptCount, completionTokenCount: request.outputCount,
                      cachedTokenCount: request.cachedTokenCount)
    }

    /// Ends a request outside a step (abort, zero tokens) and reports it next step.
    private func finish(_ request: Request, _ reason: FinishReason) {
        request.finish = reason
        if handOver(request, reason) { return }
        if !request.pages.isEmpty { releasePages(request) }
        var update = makeUpdate(request)
        update.finish = reason
        update.textDelta = takeText(request)
        finishedNow.append(update)
    }
}
