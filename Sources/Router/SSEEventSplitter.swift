import Foundation
import NIOCore

/// Cuts a server-sent-event byte stream into whole events (text up to a
/// blank line), however the bytes were split into chunks on the way.
struct SSEEventSplitter {
    private var pending: [UInt8] = []

    /// Appends bytes; returns the events they completed, each without its trailing blank line.
    mutating func append(_ buffer: ByteBuffer) -> [String] {
        pending.append(contentsOf: buffer.readableBytesView.filter { $0 != UInt8(ascii: "\r") })
        var events: [String] = []
        var start = 0
        var i = 0
        while i + 1 < pending.count {
            if pending[i] == UInt8(ascii: "\n") && pending[i + 1] == UInt8(ascii: "\n") {
                events.append(String(decoding: pending[start..<i], as: UTF8.self))
                start = i + 2
                i = start
            } else {
                i += 1
            }
        }
        pending.removeFirst(start)
        return events
    }

    /// What is left after the stream ended (an event without its blank line), if anything.
    mutating func finish() -> String? {
        defer { pending = [] }
        let rest = String(decoding: pending, as: UTF8.self)
        return rest.trimmingCharacters(in: .newlines).isEmpty ? nil : rest
    }

    /// The JSON text of an event's `data:` line(s); nil for comments and `[DONE]`.
    static func data(of event: String) -> String? {
        let lines = event.split(separator: "\n").filter { $0.hasPrefix("data:") }
        guard !lines.isEmpty else { return nil }
        let text = lines.map { line in
            var rest = line.dropFirst(5)
            if rest.first == " " { rest = rest.dropFirst() }
            return String(rest)
        }.joined(separator: "\n")
        return text == "[DONE]" ? nil : text
    }
}
