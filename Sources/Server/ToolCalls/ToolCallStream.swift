/// Splits a streamed reply as it arrives: text that cannot be part of a
/// call goes out at once; from a call's marker on (or a part of one at the
/// end, held back until the next piece decides), text is kept until the
/// reply ends, then parsed whole. Calls that do not parse go out as text.
/// A forced reply (`tool_choice` required or named) is held whole.
struct ToolCallStream {
    let reader: ToolCallReader
    private var reply = ""
    /// Received, not yet sent, and not (yet) known to start a call.
    private var pending = ""
    private var sentAny = false
    private var inCall = false

    init(reader: ToolCallReader) {
        self.reader = reader
        // A forced reply is all call: nothing goes out before it is parsed.
        if case .forced = reader { inCall = true }
    }

    /// The text of `delta` that can go to the client now.
    mutating func feed(_ delta: String) -> String {
        reply += delta
        pending += delta
        guard !inCall, case let .format(format, _) = reader else { return "" }
        if format.bareJSONStartsACall, !sentAny {
            let trimmed = pending.drop(while: \.isWhitespace)
            if trimmed.isEmpty { return "" }
            if trimmed.hasPrefix("{") { inCall = true; return "" }
        }
        if let start = pending.range(of: format.marker)?.lowerBound {
            inCall = true
            return send(before: start)
        }
        let held = Self.overlap(pending, format.marker)
        return send(before: pending.index(pending.endIndex, offsetBy: -held))
    }

    /// At the end of the reply: text still to send, and the calls.
    mutating func finish() -> ToolCallExtraction {
        defer { pending = "" }
        guard inCall else { return ToolCallExtraction(content: pending, calls: []) }
        let calls = reader.extract(reply).calls
        // Calls that do not parse: everything from the marker on is text after all.
        return ToolCallExtraction(content: calls.isEmpty ? pending : "", calls: calls)
    }

    /// Sends what is pending before `end`; the rest stays pending.
    private mutating func send(before end: String.Index) -> String {
        let out = String(pending[..<end])
        pending = String(pending[end...])
        if !out.isEmpty { sentAny = true }
        return out
    }

    /// Length of the longest end of `text` that begins `marker` (without being all of it).
    private static func overlap(_ text: String, _ marker: String) -> Int {
        for length in stride(from: min(text.count, marker.count - 1), through: 1, by: -1) where marker.hasPrefix(text.suffix(length)) {
            return length
        }
        return 0
    }
}
