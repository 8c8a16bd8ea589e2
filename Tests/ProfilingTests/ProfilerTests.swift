import Foundation
@testable import Profiling
import Testing

/// The profiler's session rules (SGLang's): one session at a time,
/// `start_step` and `num_steps` counted in engine steps that ran a batch,
/// and a file per session that reads back as the events recorded.
struct ProfilerTests {
    func settings(_ dir: String, startStep: Int? = nil, numSteps: Int? = nil, merge: Bool = false) -> ProfileSettings {
        ProfileSettings(outputDirectory: dir, profileID: "test", startStep: startStep, numSteps: numSteps, mergeProfiles: merge)
    }

    func temporaryDirectory() -> String {
        let path = NSTemporaryDirectory() + "pdserve-profiler-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Runs `count` engine steps, each recording one span when it is recorded.
    func steps(_ profiler: Profiler, _ count: Int) {
        for _ in 0..<count {
            let trace = profiler.beginStep()
            trace?.span("step", from: TraceClock.now())
            profiler.endStep(recorded: trace != nil)
        }
    }

    func stepSpans(_ path: String) throws -> Int {
        let events = try #require(try ChromeTraceFile.read(path)["traceEvents"] as? [[String: Any]])
        return events.filter { $0["name"] as? String == "step" && $0["ph"] as? String == "X" }.count
    }

    @Test func oneSessionAtATimeAndStopNeedsOne() throws {
        let profiler = Profiler(), dir = temporaryDirectory()
        #expect(throws: ProfilerError.self) { _ = try profiler.stop() }
        try profiler.start(settings(dir))
        #expect(profiler.isActive)
        do {
            try profiler.start(settings(dir))
            Issue.record("a second session started")
        } catch {
            #expect(error.kind == .conflict)
        }
        steps(profiler, 3)
        let paths = try profiler.stop()
        #expect(paths == [dir + "/test-TP-0.trace.json.gz"])
        #expect(try stepSpans(paths[0]) == 3)
        #expect(!profiler.isActive && profiler.recorder == nil)
    }

    @Test func startStepWaitsAndNumStepsEndsTheSessionItself() throws {
        let profiler = Profiler(), dir = temporaryDirectory()
        steps(profiler, 2)
        // Steps 1 and 2 ran; recording covers steps 5, 6 and 7.
        try profiler.start(settings(dir, startStep: 5, numSteps: 3))
        steps(profiler, 1)
        #expect(profiler.recorder == nil, "step 4 is the next one: nothing is recorded yet")
        steps(profiler, 1)
        #expect(profiler.recorder != nil, "step 5 is the next one: other threads record")
        steps(profiler, 5)
        #expect(!profiler.isActive)
        let path = dir + "/test-TP-0.trace.json.gz"
        // Written off the calling thread.
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: path), Date() < deadline { usleep(10_000) }
        #expect(try stepSpans(path) == 3)
        #expect(throws: ProfilerError.self) { _ = try profiler.stop() }
    }

    @Test func aStartStepInThePastMeansTheNextStep() throws {
        let profiler = Profiler(), dir = temporaryDirectory()
        steps(profiler, 4)
        try profiler.start(settings(dir, startStep: 2))
        steps(profiler, 2)
        #expect(try stepSpans(try profiler.stop()[0]) == 2)
    }

    @Test func anUnwritableDirectoryIsRefusedAtStart() {
        let profiler = Profiler()
        do {
            try profiler.start(settings("/proc/pdserve-cannot-write-here"))
            Issue.record("started with an unwritable directory")
        } catch {
            #expect(error.kind == .invalid)
        }
        #expect(!profiler.isActive)
    }

    @Test func aFullRecorderCountsWhatItDrops() {
        let recorder = TraceRecorder(capacity: 2)
        for _ in 0..<5 { recorder.instant("tick") }
        let (events, threads, dropped) = recorder.contents()
        #expect(events.count == 2 && dropped == 3)
        #expect(threads.count == 1)
    }

    /// Two traces merged: each keeps its process, times shift by the
    /// difference of their clocks' bases, and room spans share a global id.
    @Test func mergingKeysRoomsAcrossProcesses() {
        func document(pid: Int32, base: Int64, room: UInt64, name: String) -> [String: Any] {
            let recorder = TraceRecorder()
            recorder.asyncSpan(name, category: TraceMerge.roomCategory, id: room, from: 100, to: 200)
            recorder.span("step", from: 100)
            var doc = ChromeTraceFile.document(events: recorder.contents().events, threads: [:],
                                               source: .init(processName: name, role: name, pid: pid), otherData: [:])
            doc["baseTimeNanoseconds"] = base
            return doc
        }
        let merged = TraceMerge.merge([document(pid: 7, base: 5_000, room: 42, name: "prefill"),
                                       document(pid: 7, base: 2_000, room: 42, name: "decode")])
        let events = merged["traceEvents"] as? [[String: Any]] ?? []
        let rooms = events.filter { $0["cat"] as? String == TraceMerge.roomCategory }
        #expect(rooms.count == 4)
        #expect(rooms.allSatisfy { ($0["id2"] as? [String: Any])?["global"] as? String == "0x2a" && $0["id"] == nil })
        #expect(Set(events.compactMap { $0["pid"] as? Int }).count == 2, "each trace keeps a process track of its own")
        // The prefill's clock base is 3 µs later: its events move 3 µs later.
        let prefillBegin = rooms.first { $0["name"] as? String == "prefill" && $0["ph"] as? String == "b" }
        #expect(prefillBegin?["ts"] as? Double == 103)
        #expect(merged["baseTimeNanoseconds"] as? Int64 == 2_000)
    }

    @Test func aFileThatIsNotATraceIsRefused() throws {
        let path = temporaryDirectory() + "/x.json"
        try Data("{\"a\": 1}".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: ProfilerError.self) { _ = try ChromeTraceFile.read(path) }
    }
}
