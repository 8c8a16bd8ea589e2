import Foundation
import Grammar
import Models
import Profiling
import Tokenization

/// A point-in-time view of the engine for health, load and leak checks.
public struct EngineSnapshot: Sendable {
    public var waiting: Int
    public var running: Int
    public var runningTokens: Int
    public var freePages: Int
    public var totalPages: Int
    /// Pages held only by the prefix cache; reclaimable on demand.
    public var cachedPages: Int
    public var pageSize: Int
    /// Decode side: requests waiting for their KV.
    public var parked: Int
    /// Prefill side: requests that ended while transfer jobs still read their pages.
    public var inflight: Int
    /// Decode side: pages of ended requests that a peer may still write.
    public var leasedPages: Int
    /// Requests sent back to the queue because pages ran out, since start.
    public var retractions: Int
    /// Running requests sent back to the queue for a more urgent one, since start.
    public var preemptions: Int
}

/// Runs an `EngineCore` on a dedicated thread and talks to callers through
/// async streams, so no event loop ever waits on the model.
public final class Engine: @unchecked Sendable {
    private enum Command {
        case add(GenerateInput, AsyncThrowingStream<RequestUpdate, Error>.Continuation)
        case abort(String, String)
        case abortAll(String)
        case flushCache(CheckedContinuation<Void, Never>)
        case snapshot(CheckedContinuation<EngineSnapshot, Never>)
    }

    private let core: EngineCore
    private let condition = NSCondition()
    private var inbox: [Command] = []
    private var stopping = false
    private var stopped = false
    private var wakeRequested = false
    /// Only touched on the engine thread.
    private var streams: [String: AsyncThrowingStream<RequestUpdate, Error>.Continuation] = [:]
    private var thread: Thread?

    public var tokenizer: Tokenizer { core.tokenizer }
    public var model: any CausalLM { core.model }
    public var contextLength: Int { core.contextLength }
    public var options: EngineOptions { core.options }
    /// `/start_profile`'s profiler; safe from any thread.
    public var profiler: Profiler { core.profiler }

    public init(core: EngineCore) {
        self.core = core
        let thread = Thread { [unowned self] in self.run() }
        thread.name = "pdserve-engine"
        thread.stackSize = 16 << 20
        self.thread = thread
        thread.start()
    }

    private let grammarLock = NSLock()
    private var grammarCompiler: GrammarCompiler?

    /// Compiles a constraint for this model's vocabulary; safe from any
    /// thread. The first call lays out the vocabulary's bytes (once).
    public func compile(_ spec: GrammarSpec) throws(GrammarError) -> Grammar {
        grammarLock.lock()
        let compiler: GrammarCompiler
        if let existing = grammarCompiler {
            compiler = existing
        } else {
            let tokenizer = core.tokenizer
            compiler = GrammarCompiler(vocabulary: TokenVocabulary(count: core.model.config.vocabSize) { tokenizer.textBytes(of: $0) })
            grammarCompiler = compiler
        }
        grammarLock.unlock()
        return try compiler.compile(spec)
    }

    /// Why the engine would refuse `input` (fixed limits only); safe from any thread.
    public func refusal(for input: GenerateInput) -> InvalidRequest? { core.refusal(for: input) }

    /// Tokens the whole KV pool holds.
    public var kvCapacity: Int { core.kvCapacity }

    /// Starts a request; the stream yields its updates and ends when it finishes.
    /// Ending the stream early (a disconnected client) aborts the request.
    public func generate(_ input: GenerateInput) -> AsyncThrowingStream<RequestUpdate, Error> {
        let (stream, continuation) = AsyncThrowingStream<RequestUpdate, Error>.makeStream()
        continuation.onTermination = { [weak self] reason in
            if case .cancelled = reason { self?.abort(id: input.id, message: "client disconnected") }
        }
        send(.add(input, continuation))
        return stream
    }

    public func abort(id: String, message: String = "aborted by request") {
        send(.abort(id, message))
    }

    /// Aborts every queued and running request (shutdown deadline).
    public func abortEverything(message: String) {
        send(.abortAll(message))
    }

    public func flushCache() async {
        await withCheckedContinuation { send(.flushCache($0)) }
    }

    public func snapshot() async -> EngineSnapshot {
        await withCheckedContinuation { send(.snapshot($0)) }
    }

    /// Makes the engine thread run a step soon (a transfer made progress).
    public func wake() {
        condition.lock()
        wakeRequested = true
        condition.signal()
        condition.unlock()
    }

    /// Aborts whatever is in flight and stops the thread.
    public func shutdown() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while !stopped { condition.wait() }
        condition.unlock()
    }

    private func send(_ command: Command) {
        condition.lock()
        inbox.append(command)
        condition.signal()
        condition.unlock()
    }

    private func run() {
        while true {
            condition.lock()
            while inbox.isEmpty && !core.hasWork && !stopping && !wakeRequested {
                if core.hasPendingTransfers {
                    // Transfers report through wake(); the timeout also lets the side-car run its timers.
                    _ = condition.wait(until: Date(timeIntervalSinceNow: 0.005))
                    break
                }
                condition.wait()
            }
            wakeRequested = false
            let commands = inbox
            inbox.removeAll()
            let stop = stopping
            condition.unlock()

            for command in commands { handle(command) }
            if stop {
                core.abortAll(message: "server shutting down")
                deliver(core.step())
                for continuation in streams.values { continuation.finish() }
                streams.removeAll()
                condition.lock()
                stopped = true
                condition.broadcast()
                condition.unlock()
                return
            }
            if core.hasWork || core.hasPendingTransfers { deliver(core.step()) }
        }
    }

    private func handle(_ command: Command) {
        switch command {
        case let .add(input, continuation):
            guard streams[input.id] == nil else {
                continuation.finish(throwing: InvalidRequest("request id \(input.id) is already in flight"))
                return
            }
            do {
                try core.add(input)
                streams[input.id] = continuation
            } catch {
                continuation.finish(throwing: error)
            }
        case let .abort(id, message):
            core.abort(id: id, message: message)
        case let .abortAll(message):
            core.abortAll(message: message)
        case let .flushCache(continuation):
            core.flushCache()
            continuation.resume()
        case let .snapshot(continuation):
            continuation.resume(returning: EngineSnapshot(
                waiting: core.waitingCount, running: core.runningCount, runningTokens: core.runningTokenCount,
                freePages: core.freePageCount, totalPages: core.totalPageCount, cachedPages: core.cachedPageCount,
                pageSize: core.options.pageSize, parked: core.parkedCount, inflight: core.inflightCount,
                leasedPages: core.leasedPageCount, retractions: core.retractionCount,
                preemptions: core.preemptionCount))
        }
    }

    private func deliver(_ updates: [RequestUpdate]) {
        for update in updates {
            guard let continuation = streams[update.id] else { continue }
            continuation.yield(update)
            if update.finish != nil {
                continuation.finish()
                streams[update.id] = nil
            }
        }
    }
}
