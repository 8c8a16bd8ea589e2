@testable import Disaggregation
import Profiling
import Engine
import EngineTesting
import Models
import Tokenization
import Foundation
import Testing

/// Every way a PD room can end, on both sides, over real loopback
/// connections: afterwards both pools are whole, and no decode page was
/// written while no one held it (pages free at the end event are poisoned
/// and must stay so while the prefill finishes whatever it was doing).
@Suite(.serialized)
struct RoomLifecycleTests {
    static let backends = ["tcp", "shm"] + TransferEngines.available
    /// 100 tokens: 25 pages of 4, seven prefill chunks of 16.
    static let longPrompt = 13

    enum DecodeEnd: String, CaseIterable, Sendable { case clientAbort, waitingTimeout }

    func room() -> UInt64 { UInt64.random(in: 1...(UInt64.max >> 1)) }

    func settle(_ pd: PDHarness, _ ids: [String]) {
        let done = pd.pump { ids.allSatisfy { pd.finish($0) != nil } && pd.isQuiet }
        #expect(done, "rooms did not settle: \(ids.map { "\($0): \(String(describing: pd.finish($0)))" })")
        #expect(pd.poolsWhole, "a KV pool did not come back whole")
        #expect(pd.writtenPoisonedPages().isEmpty, "pages written after their lease ended: \(pd.writtenPoisonedPages())")
    }

    /// A model whose cache is three tensors of unequal widths and mixed
    /// dtypes (`SpecProbeModel`, whose tokens hash every byte its sequence
    /// has in the pool) decodes through PD exactly as a unified engine of it
    /// does, with chunks and several rooms at once; both pools come back whole.
    @Test(arguments: backends)
    func aCacheOfThreeUnequalTensorsMovesThroughPD(backend: String) async throws {
        let prompts = [Self.longPrompt, 0, 1, 2]
        var options = EngineOptions()
        options.pageSize = 4
        options.chunkedPrefillSize = 16
        options.threads = 1
        let reference = try ModelReference.load(PDHarness.model)
        let unified = try EngineCore(model: try SpecProbeModel(vocabSize: 616),
                                     tokenizer: try Tokenizer(directory: Fixtures.modelDirectory(PDHarness.model)), options: options)
        for index in prompts { try unified.add(GenerateInput(id: "u\(index)", promptTokens: reference.prompts[index], params: .greedy(12))) }
        let expected = unified.runToCompletion()
        try await withHarness(backend: backend, model: { try SpecProbeModel(vocabSize: 616) }) { pd in
            #expect(pd.decodeCore.storage.spec.tensors.map(\.elementsPerToken) == [24, 16, 8])
            let pairs = try prompts.map { try pd.submit(prompt: $0, room: room(), maxNewTokens: 12) }
            settle(pd, pairs.flatMap { [$0.prefillID, $0.decodeID] })
            for (index, pair) in zip(prompts, pairs) {
                #expect(pd.tokens(pair.decodeID) == expected["u\(index)"]?.tokens, "prompt \(index)")
            }
        }
    }

    @Test(arguments: backends)
    func aPairDecodesLikeTransformers(backend: String) async throws {
        try await withHarness(backend: backend) { pd in
            let pair = try pd.submit(prompt: Self.longPrompt, room: room())
            settle(pd, [pair.prefillID, pair.decodeID])
            #expect(pd.finish(pair.decodeID) == .length)
            #expect(pd.reference.mismatch(prompt: Self.longPrompt, output: pd.tokens(pair.decodeID)) == nil)
        }
    }

    /// Each half reports the phases it measured, on the side-cars' clock:
    /// the decode waited for the prefill's request (the clock moved 3 s
    /// between the halves' arrivals), the prefill found the decode's
    /// destination already there, and its bytes are the prompt's pages.
    @Test(arguments: ["tcp", "shm"])
    func eachHalfReportsItsOwnPhases(backend: String) async throws {
        try await withHarness(backend: backend) { pd in
            let number = room()
            let pair = try pd.submit(prompt: Self.longPrompt, room: number, prefillHalf: false)
            // The destination must be out before the clock moves, however slow the machine.
            #expect(pd.pump(prefillSteps: false) { pd.decode.state(of: pair.decodeID) == .waitingForInput })
            pd.clock.advance(3)
            try pd.addPrefill(prompt: pd.reference.prompts[Self.longPrompt], room: number)
            settle(pd, [pair.prefillID, pair.decodeID])
            let decode = try #require(pd.updates[pair.decodeID]?.last?.phases)
            let prefill = try #require(pd.updates[pair.prefillID]?.last?.phases)
            #expect(try #require(decode[.kvWait]) >= 3)
            #expect(try #require(decode[.decodeBootstrapWait]) < 3)
            #expect(decode[.decodeQueueWait] != nil && decode[.decode] != nil)
            #expect(decode[.queueWait] == nil && decode[.prefillCompute] == nil && decode.transferBytes == nil)
            #expect(try #require(prefill[.prefillBootstrapWait]) < 3)
            #expect(prefill[.kvTransfer] != nil && prefill[.queueWait] != nil && prefill[.prefillCompute] != nil)
            #expect(prefill[.decode] == nil && prefill[.kvWait] == nil)
            let pages = (pd.reference.prompts[Self.longPrompt].count + pd.prefillCore.options.pageSize - 1) / pd.prefillCore.options.pageSize
            #expect(prefill.transferBytes == pages * Int(KVDataPlane.byteCount(pages: 1, storage: pd.prefillCore.storage)))
        }
    }

    /// Profiled, each half's trace holds the room's phases and its KV
    /// transfers, every one of them named by the room's number.
    @Test(arguments: backends)
    func aProfiledPairTracesTheRoomOnBothSides(backend: String) async throws {
        try await withHarness(backend: backend) { pd in
            let directory = NSTemporaryDirectory() + "pdserve-pd-profile-\(UUID().uuidString)"
            try pd.prefillCore.profiler.start(ProfileSettings(outputDirectory: directory, profileID: "prefill"))
            try pd.decodeCore.profiler.start(ProfileSettings(outputDirectory: directory, profileID: "decode"))
            let number = room()
            let pair = try pd.submit(prompt: Self.longPrompt, room: number)
            settle(pd, [pair.prefillID, pair.decodeID])
            let prefill = try ChromeTraceFile.read(try pd.prefillCore.profiler.stop()[0])["traceEvents"] as? [[String: Any]] ?? []
            let decode = try ChromeTraceFile.read(try pd.decodeCore.profiler.stop()[0])["traceEvents"] as? [[String: Any]] ?? []
            func names(_ events: [[String: Any]], _ category: String) -> Set<String> {
                Set(events.filter { $0["cat"] as? String == category }.compactMap { $0["name"] as? String })
            }
            #expect(names(prefill, "room").isSuperset(of: ["prefill request", "prefill room", "prefill_bootstrap_wait", "kv_transfer"]))
            #expect(names(decode, "room").isSuperset(of: ["decode request", "decode room", "decode_bootstrap_wait", "kv_wait", "decode"]))
            #expect(names(prefill, "transfer").isSuperset(of: ["kv_send", "kv_metadata"]))
            // tcp lands pages itself; the one-sided engines hear that the prefill wrote them.
            #expect(names(decode, "transfer").contains(backend == "tcp" ? "kv_recv" : "kv_written"))
            let hex = "0x" + String(number, radix: 16)
            for event in prefill + decode {
                switch event["cat"] as? String {
                case "room": #expect(event["id"] as? String == hex)
                case "transfer": #expect(((event["args"] as? [String: Any])?["bootstrap_room"] as? NSNumber)?.uint64Value == number)
                default: break
                }
            }
        }
    }

    /// Defects 1–3: the decode half ends while a page write is in flight
    /// (tcp: its reader is inside readv; shm: the prefill is about to copy).
    @Test(arguments: backends, DecodeEnd.allCases)
    func decodeEndsWhileAWriteIsInFlight(backend: String, end: DecodeEnd) async throws {
        try await withHarness(backend: backend) { pd in
            pd.faults.arm(.holdMidWrite)
            let pair = try pd.submit(prompt: Self.longPrompt, room: room())
            #expect(pd.pump { pd.faults.isHolding })
            pd.idle(seconds: 0.2, prefillSteps: false)
            switch end {
            case .clientAbort: pd.decodeCore.abort(id: pair.decodeID, message: "client disconnected")
            case .waitingTimeout: pd.clock.advance(31)
            }
            #expect(pd.pump(prefillSteps: false) { pd.finish(pair.decodeID) != nil })
            if end == .waitingTimeout { #expect(pd.finish(pair.decodeID)?.failureKind == .timeout) }
            // The client has its answer, but the pages stay leased while the write can still land.
            #expect(pd.decodeCore.leasedPageCount > 0)
            pd.poisonFreeDecodePages()
            pd.faults.release()
            settle(pd, [pair.prefillID, pair.decodeID])
            // Defect 2: the prefill was told, so it stopped instead of sending the prompt for nobody.
            #expect(pd.finish(pair.prefillID)?.message?.contains("decode side aborted") == true)
        }
    }

    @Test(arguments: backends)
    func decodeAbortsBeforeAnyPageMoved(backend: String) async throws {
        try await withHarness(backend: backend) { pd in
            let pair = try pd.submit(prompt: Self.longPrompt, room: room())
            #expect(pd.pump(prefillSteps: false) { pd.prefill.mayPrefill(id: pair.prefillID) })
            pd.decodeCore.abort(id: pair.decodeID, message: "client disconnected")
            pd.poisonFreeDecodePages()
            settle(pd, [pair.prefillID, pair.decodeID])
            #expect(pd.finish(pair.prefillID)?.message?.contains("decode side aborted") == true)
        }
    }

    /// The decode's KV never comes (no prefill half): timeout, and with shm
    /// the pages wait for the prefill's acknowledgement of the abort.
    @Test(arguments: backends)
    func decodeTimesOutWithoutAPrefillHalf(backend: String) async throws {
        try await withHarness(backend: backend) { pd in
            let pair = try pd.submit(prompt: Self.longPrompt, room: room(), prefillHalf: false)
            #expect(pd.pump { pd.decodeCore.parkedCount == 1 && pd.decode.preallocQueueCount == 0 })
            pd.idle(seconds: 0.2)
            pd.clock.advance(31)
            settle(pd, [pair.decodeID])
            #expect(pd.finish(pair.decodeID)?.failureKind == .timeout)
        }
    }

    @Test(arguments: backends)
    func prefillAbortsWhileAWriteIsInFlight(backend: String) async throws {
        try await withHarness(backend: backend) { pd in
            pd.faults.arm(.holdMidWrite)
            let pair = try pd.submit(prompt: Self.longPrompt, room: room())
            #expect(pd.pump { pd.faults.isHolding })
            pd.prefillCore.abort(id: pair.prefillID, message: "aborted by /abort_request")
            // Its pages are still read by the held job: inflight, not finished.
            pd.idle(seconds: 0.2)
            #expect(pd.finish(pair.prefillID) == nil && pd.prefillCore.inflightCount == 1)
            pd.poisonFreeDecodePages()
            pd.faults.release()
            settle(pd, [pair.prefillID, pair.decodeID])
            #expect(pd.finish(pair.decodeID)?.failureKind == .transfer)
        }
    }

    @Test(arguments: backends)
    func aBrokenLinkFailsBothHalves(backend: String) async throws {
        try await withHarness(backend: backend) { pd in
            pd.faults.arm(.failWrite)
            let pair = try pd.submit(prompt: Self.longPrompt, room: room())
            settle(pd, [pair.prefillID, pair.decodeID])
            #expect(pd.finish(pair.decodeID)?.failureKind == .peerLost)
            #expect(pd.finish(pair.prefillID)?.failureKind == .peerLost)
        }
    }

    @Test(arguments: backends)
    func aMalformedFrameFailsOnlyItsRoom(backend: String) async throws {
        try await withHarness(backend: backend) { pd in
            let healthy = try pd.submit(prompt: 7, room: room())
            settle(pd, [healthy.prefillID, healthy.decodeID])
            pd.faults.arm(.malformedFrame)
            let pair = try pd.submit(prompt: Self.longPrompt, room: room())
            settle(pd, [pair.prefillID, pair.decodeID])
            #expect(pd.finish(pair.decodeID)?.failureKind == .invalidPeerData)
            #expect(pd.finish(pair.prefillID)?.message?.contains("decode side aborted") == true)
            // The link survives: the next request is served.
            let next = try pd.submit(prompt: 8, room: room())
            settle(pd, [next.prefillID, next.decodeID])
            #expect(pd.reference.mismatch(prompt: 8, output: pd.tokens(next.decodeID)) == nil)
        }
    }

    /// Defect 9: a destination for a room whose prefill half already ended is refused at once.
    @Test(arguments: backends)
    func aLateDestinationIsRefusedAtOnce(backend: String) async throws {
        try await withHarness(backend: backend) { pd in
            let pair = try pd.submit(prompt: Self.longPrompt, room: room(), decodeHalf: false)
            pd.idle(seconds: 0.1)
            pd.prefillCore.abort(id: pair.prefillID, message: "aborted by /abort_request")
            #expect(pd.pump { pd.finish(pair.prefillID) != nil })
            try pd.decodeCore.add(GenerateInput(id: pair.decodeID, promptTokens: pd.reference.prompts[Self.longPrompt], params: .greedy(4),
                                                bootstrap: pd.target(pair.room)))
            // No clock advance: the refusal must not wait for a timeout.
            settle(pd, [pair.decodeID])
            #expect(pd.finish(pair.decodeID)?.message?.contains("already ended") == true)
        }
    }

    @Test(arguments: backends)
    func aPrefillHalfWithoutDecodeTimesOut(backend: String) async throws {
        try await withHarness(backend: backend) { pd in
            let pair = try pd.submit(prompt: Self.longPrompt, room: room(), decodeHalf: false)
            pd.idle(seconds: 0.1)
            #expect(pd.finish(pair.prefillID) == nil)
            pd.clock.advance(31)
            settle(pd, [pair.prefillID])
            #expect(pd.finish(pair.prefillID)?.failureKind == .timeout)
        }
    }

    /// Defect 7: --max-running-requests holds on the decode side, at activation.
    @Test(arguments: backends)
    func decodeActivationRespectsMaxRunning(backend: String) async throws {
        try await withHarness(backend: backend, decodeMaxRunning: 1) { pd in
            let pairs = try [7, 8, 9].map { try pd.submit(prompt: $0, room: room()) }
            var most = 0
            let done = pd.pump {
                most = max(most, pd.decodeCore.runningCount)
                return pairs.allSatisfy { pd.finish($0.decodeID) != nil && pd.finish($0.prefillID) != nil }
            }
            #expect(done && most == 1)
            for (index, pair) in zip([7, 8, 9], pairs) {
                #expect(pd.reference.mismatch(prompt: index, output: pd.tokens(pair.decodeID)) == nil)
            }
            settle(pd, pairs.flatMap { [$0.prefillID, $0.decodeID] })
        }
    }
}

extension RoomLifecycleTests {
    @Test(arguments: backends)
    func anAbortInThePreallocQueueNeedsNoPeer(backend: String) async throws {
        try await withHarness(backend: backend) { pd in
            // 343 tokens take 86 of the 128 pages: the next long prompt must wait for pages.
            let holder = try pd.submit(prompt: 21, room: room(), prefillHalf: false)
            let waiting = try pd.submit(prompt: 20, room: room(), prefillHalf: false)
            #expect(pd.pump { pd.decode.preallocQueueCount == 1 && pd.decodeCore.parkedCount == 2 })
            pd.decodeCore.abort(id: waiting.decodeID, message: "client disconnected")
            #expect(pd.pump { pd.finish(waiting.decodeID) != nil })
            #expect(pd.finish(waiting.decodeID) == .abort(message: "client disconnected"))
            pd.clock.advance(31)
            settle(pd, [holder.decodeID])
        }
    }

    /// A room whose KV arrived but which waits for a running slot, then ends: its pages are the engine's again at once.
    @Test(arguments: backends)
    func anAbortWhileWaitingForARunningSlot(backend: String) async throws {
        try await withHarness(backend: backend, decodeMaxRunning: 1) { pd in
            let first = try pd.submit(prompt: 7, room: room(), maxNewTokens: 300)
            #expect(pd.pump { pd.decodeCore.runningCount == 1 })
            let second = try pd.submit(prompt: 8, room: room())
            #expect(pd.pump { pd.finish(second.prefillID) != nil })
            pd.idle(seconds: 0.1)
            #expect(pd.finish(second.decodeID) == nil && pd.decodeCore.parkedCount == 1)
            pd.decodeCore.abort(id: second.decodeID, message: "client disconnected")
            settle(pd, [first.prefillID, first.decodeID, second.prefillID, second.decodeID])
            #expect(pd.finish(first.decodeID) == .length && pd.tokens(first.decodeID).count == 300)
        }
    }

    /// Defect 8: a stalled decode connection never stalls the prefill's engine thread.
    @Test(arguments: backends)
    func aStalledLinkDoesNotStallThePrefillEngine(backend: String) async throws {
        try await withHarness(backend: backend) { pd in
            pd.faults.arm(.holdMidWrite)
            let stalled = try pd.submit(prompt: Self.longPrompt, room: room())
            #expect(pd.pump { pd.faults.isHolding })
            // A plain request on the same prefill engine runs to the end while the write is held.
            try pd.prefillCore.add(GenerateInput(id: "plain", promptTokens: pd.reference.prompts[8], params: .greedy(pd.reference.maxNewTokens)))
            #expect(pd.pump(seconds: 10) { pd.finish("plain") != nil })
            #expect(pd.reference.mismatch(prompt: 8, output: pd.tokens("plain")) == nil)
            #expect(pd.faults.isHolding)
            pd.faults.release()
            settle(pd, [stalled.prefillID, stalled.decodeID])
            #expect(pd.reference.mismatch(prompt: Self.longPrompt, output: pd.tokens(stalled.decodeID)) == nil)
        }
    }

    /// fake moves nothing: every path still ends with whole pools.
    @Test func theFakeBackendSettlesEveryPath() async throws {
        try await withHarness(backend: "fake") { pd in
            let served = try pd.submit(prompt: Self.longPrompt, room: room())
            settle(pd, [served.prefillID, served.decodeID])
            #expect(pd.finish(served.decodeID) == .length && pd.tokens(served.decodeID).count == pd.reference.maxNewTokens)
            let aborted = try pd.submit(prompt: Self.longPrompt, room: room(), maxNewTokens: 400)
            #expect(pd.pump { pd.decodeCore.runningCount == 1 })
            pd.decodeCore.abort(id: aborted.decodeID, message: "client disconnected")
            settle(pd, [aborted.prefillID, aborted.decodeID])
        }
    }
}

/// The optional engines these tests also run over: those whose wheel is
/// installed, and all of them when PDSERVE_REQUIRE_TRANSFER_ENGINES=1 (CI),
/// so a missing engine fails there instead of being skipped.
enum TransferEngines {
    static let available: [String] = {
        let required = ProcessInfo.processInfo.environment["PDSERVE_REQUIRE_TRANSFER_ENGINES"] == "1"
        let nixl = (try? PythonWheelLibrary.find(file: "libnixl_capi.so", folders: NIXLTransferBackend.wheelFolders,
                                                 override: "PDSERVE_NIXL_LIB", install: "")) != nil
        let mooncake = (try? MooncakeLibrary.find()) != nil
        return (required || nixl ? ["nixl"] : []) + (required || mooncake ? ["mooncake"] : [])
    }()
}

/// Runs `body` with a fresh harness and always shuts it down (the bootstrap server gracefully).
func withHarness(backend: String, decodeMaxRunning: Int = 64, prefillKey: ChannelKey? = nil, decodeKey: ChannelKey? = nil,
                 model: (() throws -> any CausalLM)? = nil, _ body: (PDHarness) async throws -> Void) async throws {
    let pd = try await PDHarness(backend: backend, decodeMaxRunning: decodeMaxRunning, prefillKey: prefillKey, decodeKey: decodeKey, model: model)
    do {
        try await body(pd)
    } catch {
        await pd.stop()
        throw error
    }
    await pd.stop()
}

extension FinishReason {
    var failureKind: RequestFailure.Kind? {
        if case .failed(let failure) = self { return failure.kind }
        return nil
    }
}
