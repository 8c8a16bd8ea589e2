import Foundation
import Logging

/// One instance's profiler, as SGLang's `/start_profile` and `/stop_profile`
/// drive it: idle → armed (waiting for `start_step`) → recording (for
/// `num_steps` engine steps, or until stopped) → files written → idle.
///
/// The engine thread calls `beginStep`/`endStep` around each step that runs
/// a batch; other threads (the side-car's transfer queues) record into
/// `recorder` while it is non-nil. Nothing is recorded, and nothing costs
/// more than one lock per step, while idle.
public final class Profiler: @unchecked Sendable {
    /// Touched under the profiler's lock, or by the one thread that writes it once it ended.
    private final class Session: @unchecked Sendable {
        let settings: ProfileSettings
        let recorder = TraceRecorder()
        /// The first recorded step, on the engine's step count.
        let firstStep: Int
        var steps = 0
        init(settings: ProfileSettings, firstStep: Int) {
            self.settings = settings
            self.firstStep = firstStep
        }
    }

    /// Shown as the trace's process; set once the instance knows its role and port.
    public var source: ChromeTraceFile.Source
    private let logger: Logger
    private let lock = NSLock()
    private var session: Session?
    /// Engine steps that ran a batch, since start-up.
    private var forwardCount = 0

    public init(source: ChromeTraceFile.Source = .init(processName: "pdserve", role: "unified"), logger: Logger = Logger(label: "pdserve.profiler")) {
        self.source = source
        self.logger = logger
    }

    /// Whether a session is armed or recording.
    public var isActive: Bool { lock.withLock { session != nil } }

    /// Where the spans of other threads go now; nil when not recording.
    public var recorder: TraceRecorder? {
        lock.withLock {
            // From the moment the next step is one to record.
            guard let session, forwardCount + 1 >= session.firstStep else { return nil }
            return session.recorder
        }
    }

    /// Runs `body` as a span on this thread's track when recording; just runs it otherwise.
    public func measure<T>(_ name: String, category: String, args: @autoclosure () -> [String: TraceValue] = [:],
                           _ body: () throws -> T) rethrows -> T {
        guard let recorder else { return try body() }
        return try recorder.measure(name, category: category, args: args(), body)
    }

    /// Arms a session; refuses a second one and a directory it cannot write.
    public func start(_ settings: ProfileSettings) throws(ProfilerError) {
        do {
            try FileManager.default.createDirectory(atPath: settings.outputDirectory, withIntermediateDirectories: true)
        } catch {
            throw ProfilerError(.invalid, "output_dir \(settings.outputDirectory) cannot be created: \(error.localizedDescription)")
        }
        guard FileManager.default.isWritableFile(atPath: settings.outputDirectory) else {
            throw ProfilerError(.invalid, "output_dir \(settings.outputDirectory) is not writable")
        }
        lock.lock()
        guard session == nil else {
            lock.unlock()
            throw ProfilerError(.conflict, "Profiling is already in progress. Call /stop_profile first.")
        }
        // SGLang's rule: no start step, or one in the past, means the next step.
        session = Session(settings: settings, firstStep: max(settings.startStep ?? 0, forwardCount + 1))
        lock.unlock()
        logger.info("profiling starts: traces go to \(settings.outputDirectory) (profile id \(settings.profileID))")
    }

    /// Ends the session now and writes its files; returns their paths.
    public func stop() throws(ProfilerError) -> [String] {
        guard let ended = lock.withLock({ () -> Session? in defer { session = nil }; return session }) else {
            throw ProfilerError(.conflict, "Profiling is not in progress. Call /start_profile first.")
        }
        return try write(ended)
    }

    /// The engine is about to run a step: its recorder when this step is recorded.
    public func beginStep() -> TraceRecorder? {
        lock.withLock {
            forwardCount += 1
            guard let session, forwardCount >= session.firstStep else { return nil }
            return session.recorder
        }
    }

    /// The step begun last has ended; the session ends with its `num_steps`-th step.
    public func endStep(recorded: Bool) {
        guard recorded else { return }
        let finished = lock.withLock { () -> Session? in
            guard let current = session else { return nil }
            current.steps += 1
            guard let limit = current.settings.numSteps, current.steps >= limit else { return nil }
            session = nil
            return current
        }
        guard let finished else { return }
        // Off the engine thread: compressing a trace takes a while.
        DispatchQueue.global(qos: .utility).async { [self] in
            do { _ = try write(finished) } catch { logger.error("profile \(finished.settings.profileID) was not written: \(error)") }
        }
    }

    private func write(_ ended: Session) throws(ProfilerError) -> [String] {
        let settings = ended.settings
        let (events, threads, dropped) = ended.recorder.contents()
        if dropped > 0 { logger.warning("profile \(settings.profileID): \(dropped) events past the recorder's capacity were dropped") }
        var other: [String: Any] = ["profile_id": settings.profileID, "steps": ended.steps, "dropped_events": dropped,
                                    "activities": settings.activities]
        if let start = settings.startStep { other["start_step"] = start }
        if let steps = settings.numSteps { other["num_steps"] = steps }
        let document = ChromeTraceFile.document(events: events, threads: threads, source: source, otherData: other)
        let path = (settings.outputDirectory as NSString).appendingPathComponent(settings.fileName(rank: source.rank))
        var paths = [path]
        do {
            try ChromeTraceFile.write(document, to: path)
            if settings.mergeProfiles {
                let merged = (settings.outputDirectory as NSString).appendingPathComponent(settings.mergedFileName)
                try ChromeTraceFile.write(TraceMerge.merge([document]), to: merged)
                paths.append(merged)
            }
        } catch {
            throw ProfilerError(.io, "cannot write the trace to \(path): \(error)")
        }
        logger.info("profiling done: \(ended.steps) steps, \(events.count) events in \(paths.joined(separator: ", "))")
        return paths
    }
}
