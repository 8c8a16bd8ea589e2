import Foundation

/// Collects the events of one profiling session from every thread that
/// records (the engine thread, transfer threads, the side-cars' readers).
/// Appending takes one short lock; past `capacity` events are counted and
/// dropped, so an unbounded session cannot exhaust memory.
public final class TraceRecorder: @unchecked Sendable {
    public let capacity: Int
    private let lock = NSLock()
    private var events: [TraceEvent] = []
    private var threadNames: [Int32: String] = [:]
    private var dropped = 0

    public init(capacity: Int = 2_000_000) {
        self.capacity = capacity
        events.reserveCapacity(min(capacity, 65_536))
    }

    /// A span from `start` (a `TraceClock` time) until now, on this thread's track.
    public func span(_ name: String, category: String = "cpu", from start: Double, args: [String: TraceValue] = [:]) {
        let end = TraceClock.now()
        append(TraceEvent(name: name, category: category, kind: .complete(durationMicros: end - start), timestamp: start,
                          thread: Self.currentThread(), args: args))
    }

    /// Runs `body` as a span named `name`.
    @inline(__always)
    public func measure<T>(_ name: String, category: String = "cpu", args: [String: TraceValue] = [:], _ body: () throws -> T) rethrows -> T {
        let start = TraceClock.now()
        defer { span(name, category: category, from: start, args: args) }
        return try body()
    }

    /// A span on the async track `id` of `category` (a PD room's track), from `start` to `end`.
    public func asyncSpan(_ name: String, category: String, id: UInt64, from start: Double, to end: Double, args: [String: TraceValue] = [:]) {
        let thread = Self.currentThread()
        append(TraceEvent(name: name, category: category, kind: .asyncBegin(id: id), timestamp: start, thread: thread, args: args))
        append(TraceEvent(name: name, category: category, kind: .asyncEnd(id: id), timestamp: max(start, end), thread: thread))
    }

    public func instant(_ name: String, category: String = "cpu", args: [String: TraceValue] = [:]) {
        append(TraceEvent(name: name, category: category, kind: .instant, timestamp: TraceClock.now(), thread: Self.currentThread(), args: args))
    }

    public func append(_ event: TraceEvent) {
        lock.withLock {
            if threadNames[event.thread] == nil, event.thread == Self.currentThread() { threadNames[event.thread] = Self.currentThreadName() }
            guard events.count < capacity else { dropped += 1; return }
            events.append(event)
        }
    }

    /// Everything recorded so far, the names of the threads it came from, and how many events did not fit.
    public func contents() -> (events: [TraceEvent], threads: [Int32: String], dropped: Int) {
        lock.withLock { (events, threadNames, dropped) }
    }

    static func currentThread() -> Int32 { TraceThreads.current().id }
    static func currentThreadName() -> String { TraceThreads.current().name }
}

/// A small number and a name for each thread that records, kept in the
/// thread's own dictionary (Swift on Linux exposes neither gettid nor
/// pthread_getname_np): the trace's `tid` and its track's title.
enum TraceThreads {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var issued: Int32 = 0
    private static let key = "pdserve.trace.thread"

    final class Identity: NSObject {
        let id: Int32
        let name: String
        init(id: Int32, name: String) {
            self.id = id
            self.name = name
        }
    }

    static func current() -> Identity {
        let thread = Thread.current
        if let known = thread.threadDictionary[key] as? Identity { return known }
        let id = lock.withLock { issued += 1; return issued }
        let name = thread.isMainThread ? "main" : (thread.name.flatMap { $0.isEmpty ? nil : $0 } ?? "thread \(id)")
        let identity = Identity(id: id, name: name)
        thread.threadDictionary[key] = identity
        return identity
    }
}
