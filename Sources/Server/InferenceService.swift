import Engine
import Foundation
import Hummingbird
import Logging
import NIOCore
import Tokenization

/// The bridge between HTTP handlers and the engine: admission (validation
/// and queue limits), disconnect handling, and per-request metrics.
final class InferenceService: Sendable {
    let engine: Engine
    let configuration: ServerConfiguration
    let metrics: ServerMetrics
    let lifecycle = InstanceLifecycle()
    let connections = ConnectionCounter()
    private let inFlight = InFlightCounter()
    private let aliases = RequestAliases()

    init(engine: Engine, configuration: ServerConfiguration, metrics: ServerMetrics) {
        self.engine = engine
        self.configuration = configuration
        self.metrics = metrics
    }

    var tokenizer: Tokenizer { engine.tokenizer }

    /// Requests admitted and not yet finished.
    var inFlightCount: Int { inFlight.value }

    /// Checks every input before any is started, so a batch is all or nothing.
    func admit(_ inputs: [GenerateInput]) throws(APIError) {
        if lifecycle.isDraining {
            metrics.rejected()
            throw .draining
        }
        for input in inputs {
            if let refusal = engine.refusal(for: input) { throw .invalid(refusal.message) }
        }
        let limit = configuration.maxRunningRequests + configuration.maxQueuedRequests
        guard inFlight.value + inputs.count <= limit else {
            metrics.rejected()
            throw .overloaded("The server is at capacity (\(limit) requests running or queued); retry shortly.")
        }
    }

    /// Runs admitted inputs and merges their updates, tagged with the
    /// input's index. Closing `channel` (a client that went away) aborts them.
    /// `names` are client-chosen ids (SGLang's `rid`) that `/abort_request` may name.
    func run(_ inputs: [GenerateInput], names: [String]? = nil, channel: (any Channel)?, logger: Logger) -> AsyncThrowingStream<(Int, RequestUpdate), Error> {
        let (merged, continuation) = AsyncThrowingStream<(Int, RequestUpdate), Error>.makeStream()
        inFlight.add(inputs.count)
        let aliases = self.aliases
        let names = names ?? inputs.map(\.id)
        let engine = self.engine
        // The engine gets the requests before their names become abortable: it
        // handles commands in order and drops an abort for an id it does not
        // know yet, so an /abort_request arriving in between was lost.
        let streams = zip(inputs, names).map { input, name in
            var input = input
            input.name = name
            return engine.generate(input)
        }
        aliases.add(names: names, ids: inputs.map(\.id))
        let ids = inputs.map(\.id)
        let connections = self.connections
        let task = Task {
            // Registered with the connection, and removed when these inputs end.
            var watch: (DisconnectWatch, Int)?
            if let channel {
                let connection = await DisconnectWatch.of(channel, counter: connections)
                if let key = connection.watch(abort: { for id in ids { engine.abort(id: id, message: "client disconnected") } }) {
                    watch = (connection, key)
                }
            }
            defer {
                if let (connection, key) = watch { connection.end(key) }
                inFlight.add(-inputs.count)
                aliases.remove(names: names, ids: inputs.map(\.id))
            }
            do {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for (index, input) in inputs.enumerated() {
                        group.addTask {
                            let timer = RequestTimer(metrics: self.metrics)
                            logger.debug("request started", metadata: ["request_id": "\(input.id)", "prompt_tokens": "\(input.promptTokens.count)"])
                            let span = InferenceSpan(input: input, name: names[index], mode: self.configuration.disaggregationMode)
                            var last: RequestUpdate?
                            do {
                                for try await update in streams[index] {
                                    timer.observe(update)
                                    continuation.yield((index, update))
                                    last = update
                                }
                            } catch {
                                span.end(error: error)
                                throw error
                            }
                            span.end(last)
                            if let last { timer.finish(last) }
                            var metadata: Logger.Metadata = [
                                "request_id": "\(input.id)", "prompt_tokens": "\(input.promptTokens.count)",
                                "completion_tokens": "\(last?.completionTokenCount ?? 0)", "finish_reason": "\(last?.finish?.name ?? "none")",
                            ]
                            if case .failed(let failure)? = last?.finish {
                                metadata["failure"] = "\(failure.kind.rawValue): \(failure.message)"
                                // The whole request is answered with this error, so its other inputs' work is wasted.
                                for other in ids where other != input.id {
                                    engine.abort(id: other, message: "another input of this request failed: \(failure.message)")
                                }
                            }
                            logger.info("request finished", metadata: metadata)
                        }
                    }
                    try await group.waitForAll()
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { reason in
            if case .cancelled = reason {
                task.cancel()
                for id in ids { engine.abort(id: id, message: "client disconnected") }
            }
        }
        return merged
    }

    /// Aborts requests by client name (`rid`), or every request; returns how many.
    func abort(name: String?, all: Bool) -> Int {
        let ids = all ? aliases.allIDs : aliases.ids(for: name ?? "")
        for id in ids { engine.abort(id: id, message: "aborted by /abort_request") }
        return ids.count
    }

    /// Runs to completion and returns each input's result in order. An
    /// input the server failed (`FinishReason.failed`) makes the whole
    /// answer that error (the first to fail), thrown as an `APIError`.
    func collect(_ inputs: [GenerateInput], names: [String]? = nil, channel: (any Channel)?, logger: Logger) async throws -> [Generation] {
        var results = Array(repeating: Generation(), count: inputs.count)
        var firstFailure: RequestFailure?
        for try await (index, update) in run(inputs, names: names, channel: channel, logger: logger) {
            results[index].absorb(update)
            if firstFailure == nil, case .failed(let failure)? = update.finish { firstFailure = failure }
        }
        if let firstFailure { throw APIError.failed(firstFailure) }
        return results
    }

    /// Starts a streamed request and waits for its first update before the
    /// handler commits to a 200 and an SSE head: a failure that comes before
    /// any output (a PD request whose KV never arrived) is thrown here and
    /// answered with its own 5xx status.
    func start(_ inputs: [GenerateInput], names: [String]? = nil, channel: (any Channel)?, logger: Logger) async throws -> StartedUpdates {
        let updates = StartedUpdates(run(inputs, names: names, channel: channel, logger: logger))
        try await updates.awaitFirst()
        return updates
    }
}

/// The merged updates of a streamed request whose first update has
/// arrived. An input that ends with `FinishReason.failed` is thrown as an
/// `APIError`: after the SSE head that becomes an error event and `[DONE]`.
/// Used by one task at a time (the handler, then the SSE producer).
final class StartedUpdates: @unchecked Sendable {
    private var iterator: AsyncThrowingStream<(Int, RequestUpdate), Error>.AsyncIterator
    private var first: (Int, RequestUpdate)?

    /// Holds the one iterator for the stream's whole life: dropping an
    /// iterator of an AsyncThrowingStream ends the stream (and aborts the requests).
    init(_ stream: AsyncThrowingStream<(Int, RequestUpdate), Error>) {
        iterator = stream.makeAsyncIterator()
    }

    fileprivate func awaitFirst() async throws {
        first = try await pull()
    }

    func next() async throws -> (Int, RequestUpdate)? {
        if let first {
            self.first = nil
            return first
        }
        return try await pull()
    }

    private func pull() async throws -> (Int, RequestUpdate)? {
        var iterator = self.iterator
        defer { self.iterator = iterator }
        let element = try await iterator.next()
        if case .failed(let failure)? = element?.1.finish { throw APIError.failed(failure) }
        return element
    }
}

/// Client-chosen request names → engine ids, for `/abort_request`. Every
/// request is listed (under its engine id when the client named none) so
/// abort-all reaches them all.
final class RequestAliases: @unchecked Sendable {
    private let lock = NSLock()
    private var table: [String: [String]] = [:]

    func add(names: [String], ids: [String]) {
        lock.withLock { for (name, id) in zip(names, ids) { table[name, default: []].append(id) } }
    }

    func remove(names: [String], ids: [String]) {
        lock.withLock {
            for (name, id) in zip(names, ids) {
                table[name]?.removeAll { $0 == id }
                if table[name]?.isEmpty == true { table[name] = nil }
            }
        }
    }

    func ids(for name: String) -> [String] { lock.withLock { table[name] ?? [] } }
    var allIDs: [String] { lock.withLock { table.values.flatMap { $0 } } }
}

/// Requests in flight; shared between handlers on different event loops.
final class InFlightCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    var value: Int { lock.withLock { count } }
    func add(_ delta: Int) { lock.withLock { count += delta } }
}

/// Latency bookkeeping for one request: TTFT, inter-token gaps, end to end.
final class RequestTimer: @unchecked Sendable {
    private let metrics: ServerMetrics
    private let start = ContinuousClock.now
    private var lastToken: ContinuousClock.Instant?

    init(metrics: ServerMetrics) { self.metrics = metrics }

    func observe(_ update: RequestUpdate) {
        guard !update.newTokens.isEmpty else { return }
        let now = ContinuousClock.now
        if let lastToken {
            metrics.tokens(update.newTokens.count, after: (now - lastToken).inSeconds)
        } else {
            metrics.firstToken(after: (now - start).inSeconds, promptTokens: update.promptTokenCount, cachedTokens: update.cachedTokenCount)
        }
        metrics.generated(update.newTokens.count)
        lastToken = now
    }

    func finish(_ last: RequestUpdate) {
        metrics.finished(last, e2eSeconds: (ContinuousClock.now - start).inSeconds)
    }
}
