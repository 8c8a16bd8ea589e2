/// One entry of a Chrome trace (the JSON format Perfetto and
/// chrome://tracing open): a span with a duration on a thread's track, the
/// begin or end of a span on an async track keyed by an id (one per PD
/// room), or a point in time.
public struct TraceEvent: Sendable {
    public enum Kind: Sendable, Equatable {
        /// A span on its thread's track ("X").
        case complete(durationMicros: Double)
        /// A span on the async track `id` of its category ("b" and "e").
        case asyncBegin(id: UInt64)
        case asyncEnd(id: UInt64)
        /// A moment on its thread's track ("i").
        case instant
    }

    public var name: String
    public var category: String
    public var kind: Kind
    /// Microseconds on `TraceClock`.
    public var timestamp: Double
    /// The OS thread it was recorded on.
    public var thread: Int32
    public var args: [String: TraceValue]

    public init(name: String, category: String, kind: Kind, timestamp: Double, thread: Int32, args: [String: TraceValue] = [:]) {
        self.name = name
        self.category = category
        self.kind = kind
        self.timestamp = timestamp
        self.thread = thread
        self.args = args
    }

    /// The event as the trace format spells it.
    func json(pid: Int32) -> [String: Any] {
        var object: [String: Any] = ["name": name, "cat": category, "ts": timestamp, "pid": pid, "tid": thread]
        switch kind {
        case .complete(let duration):
            object["ph"] = "X"
            object["dur"] = duration
        case .asyncBegin(let id):
            object["ph"] = "b"
            object["id"] = TraceEvent.hexID(id)
        case .asyncEnd(let id):
            object["ph"] = "e"
            object["id"] = TraceEvent.hexID(id)
        case .instant:
            object["ph"] = "i"
            object["s"] = "t"
        }
        if !args.isEmpty { object["args"] = args.mapValues(\.json) }
        return object
    }

    static func hexID(_ id: UInt64) -> String { "0x" + String(id, radix: 16) }
}

/// An argument value shown in a span's details.
public enum TraceValue: Sendable, Equatable {
    case int(Int)
    case uint(UInt64)
    case double(Double)
    case string(String)
    case uints([UInt64])

    var json: Any {
        switch self {
        case .int(let value): value
        case .uint(let value): value
        case .double(let value): value
        case .string(let value): value
        case .uints(let values): values
        }
    }
}
