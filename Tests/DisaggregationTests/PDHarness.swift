@testable import Disaggregation
import Engine
import EngineTesting
import Foundation
import Kernels
import Logging
import Models
import Tokenization
import ServiceLifecycle

/// A prefill and a decode engine with their side-cars in one process, over
/// real loopback connections and a real bootstrap server, stepped by the
/// test itself. Timeouts run on a manual clock; the prefill's writes go
/// through a fault-injecting backend.
final class PDHarness {
    static let model = "qwen2-fp32"
    let reference: ModelReference
    let clock = ManualClock()
    let faults = FaultInjector()
    let prefillCore: EngineCore
    let decodeCore: EngineCore
    let prefill: PrefillSideCar
    let decode: DecodeSideCar
    let bootstrapPort: Int
    let backendName: String
    private let bootstrapGroup: ServiceGroup
    private let bootstrapTask: Task<Void, Error>
    private(set) var updates: [String: [RequestUpdate]] = [:]
    private var poisoned: [Int32] = []
    static let poison: UInt8 = 0xA5

    /// `model` makes each side's model (default: the qwen2 fixture), with that fixture's tokenizer.
    init(backend: String, decodeMaxRunning: Int = 64, prefillKey: ChannelKey? = nil, decodeKey: ChannelKey? = nil,
         model: (() throws -> any CausalLM)? = nil,
         settings overrides: (inout DisaggregationEnvironment) -> Void = { _ in }) async throws {
        backendName = backend
        reference = try ModelReference.load(Self.model)
        var options = EngineOptions()
        options.pageSize = 4
        options.chunkedPrefillSize = 16
        options.maxTotalTokens = 4 * 128
        options.threads = 1
        func core(_ options: EngineOptions) throws -> EngineCore {
            guard let model else { return try EngineCore.fixture(Self.model, options: options) }
            return try EngineCore(model: try model(), tokenizer: try Tokenizer(directory: Fixtures.modelDirectory(Self.model)), options: options)
        }
        prefillCore = try core(options)
        var decodeOptions = options
        decodeOptions.maxRunningRequests = decodeMaxRunning
        if TransferBackends.needsSharedPool(backend) { decodeOptions.kvSharedMemoryPath = SharedPoolFile.newPath() }
        decodeCore = try core(decodeOptions)

        var settings = DisaggregationEnvironment.defaults
        settings.bootstrapTimeout = 30
        settings.waitingTimeout = 30
        // Heartbeats run on real time; these tests end links themselves.
        settings.heartbeatInterval = 3600
        overrides(&settings)
        var logger = Logger(label: "pd-harness")
        logger.logLevel = .critical
        let layout = DisaggregationSetup.layout(of: prefillCore)
        let prefillBackend = FaultyBackend(
            inner: try TransferBackends.make(backend, context: .init(side: .prefill, storage: prefillCore.storage, layout: layout)),
            faults: faults, storage: prefillCore.storage)
        prefill = try PrefillSideCar(storage: prefillCore.storage, layout: layout, backend: prefillBackend, settings: settings,
                                     host: "127.0.0.1", authKey: prefillKey, clock: clock, profiler: prefillCore.profiler, logger: logger)
        prefillCore.hooks = prefill
        let registry = BootstrapRegistry()
        registry.register(PrefillRoute(rankIP: "127.0.0.1", rankPort: prefill.transferPort, layout: layout, backend: backend))
        let (ports, sink) = AsyncStream<Int>.makeStream()
        let sideCar = prefill
        let app = BootstrapServer(registry: registry, host: "127.0.0.1", port: 0, logger: logger, key: prefillKey,
                                  drained: { sideCar.isDrained(session: $0) }).makeApplication { sink.yield($0) }
        // Stopped through graceful shutdown: cancelling a running Hummingbird app can trap in NIO.
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        bootstrapGroup = group
        bootstrapTask = Task { try await group.run() }
        var port = 0
        for await p in ports { port = p; break }
        bootstrapPort = port
        let decodeBackend = try TransferBackends.make(backend, context: .init(side: .decode, storage: decodeCore.storage, layout: layout))
        decode = DecodeSideCar(storage: decodeCore.storage, layout: layout, backend: decodeBackend, settings: settings,
                               vocabSize: decodeCore.model.config.vocabSize, authKey: decodeKey, clock: clock,
                               profiler: decodeCore.profiler, logger: logger)
        decodeCore.hooks = decode
    }

    func stop() async {
        faults.release()
        prefill.stop()
        decode.stop()
        await bootstrapGroup.triggerGracefulShutdown()
        _ = try? await bootstrapTask.value
    }

    // MARK: requests

    struct Pair {
        let room: UInt64
        var prefillID: String { "p-\(room)" }
        var decodeID: String { "d-\(room)" }
    }

    func target(_ room: UInt64) -> BootstrapTarget { BootstrapTarget(host: "127.0.0.1", port: bootstrapPort, room: room) }

    /// Adds the halves of one PD request (either may be left out).
    @discardableResult
    func submit(prompt index: Int, room: UInt64, maxNewTokens: Int? = nil, prefillHalf: Bool = true, decodeHalf: Bool = true) throws -> Pair {
        let pair = Pair(room: room)
        let prompt = reference.prompts[index]
        if prefillHalf { try addPrefill(prompt: prompt, room: room) }
        if decodeHalf {
            try decodeCore.add(GenerateInput(id: pair.decodeID, promptTokens: prompt, params: .greedy(maxNewTokens ?? reference.maxNewTokens),
                                             bootstrap: target(room)))
        }
        return pair
    }

    func addPrefill(prompt: [Int], room: UInt64) throws {
        try prefillCore.add(GenerateInput(id: Pair(room: room).prefillID, promptTokens: prompt, params: .greedy(1), bootstrap: target(room)))
    }

    func tokens(_ id: String) -> [Int] { (updates[id] ?? []).flatMap(\.newTokens) }
    func finish(_ id: String) -> FinishReason? { updates[id]?.last(where: { $0.finish != nil })?.finish }

    // MARK: stepping

    /// Steps both engines until `done` holds (bounded: false after `seconds`).
    @discardableResult
    func pump(seconds: Double = 15, prefillSteps: Bool = true, until done: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if prefillSteps { record(prefillCore.step()) }
            record(decodeCore.step())
            if done() { return true }
            usleep(300)
        }
        return false
    }

    /// Steps both engines for a while, whatever happens.
    func idle(seconds: Double, prefillSteps: Bool = true) {
        pump(seconds: seconds, prefillSteps: prefillSteps) { false }
    }

    private func record(_ batch: [RequestUpdate]) {
        for update in batch { updates[update.id, default: []].append(update) }
    }

    /// Nothing queued, running, inflight or leased on either side.
    var isQuiet: Bool {
        for core in [prefillCore, decodeCore] where core.waitingCount + core.runningCount + core.parkedCount + core.inflightCount + core.leasedPageCount > 0 {
            return false
        }
        return decode.leasedRoomCount == 0
    }

    /// Every page of both pools is free again once the prefix caches are flushed.
    var poolsWhole: Bool {
        prefillCore.flushCache()
        decodeCore.flushCache()
        return [prefillCore, decodeCore].allSatisfy { $0.freePageCount == $0.totalPageCount && $0.allocatorInvariantsHold }
    }

    // MARK: poison: pages no one leases must not be written

    /// Fills every free decode page with a pattern (every buffer of the pool).
    func poisonFreeDecodePages() {
        let storage = decodeCore.storage
        poisoned = (0..<Int32(storage.pageCount)).filter { decodeCore.allocator.referenceCount(of: $0) == 0 }
        for page in poisoned { forEachRange(page) { $0.initializeMemory(as: UInt8.self, repeating: Self.poison) } }
    }

    /// Poisoned pages that something wrote into while no one owned them.
    func writtenPoisonedPages() -> [Int32] {
        let storage = decodeCore.storage
        return poisoned.filter { page in
            var intact = true
            forEachRange(page) { bytes in
                if bytes.contains(where: { $0 != Self.poison }) { intact = false }
            }
            return !intact
        }
    }

    /// `page`'s bytes in each of the decode pool's buffers.
    private func forEachRange(_ page: Int32, _ body: (UnsafeMutableRawBufferPointer) -> Void) {
        for buffer in decodeCore.storage.buffers {
            body(UnsafeMutableRawBufferPointer(start: buffer.base + Int(page) * buffer.bytesPerPage, count: buffer.bytesPerPage))
        }
    }
}
