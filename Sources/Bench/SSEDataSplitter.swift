/// Cuts a server-sent event byte stream into the payloads of its `data:`
/// lines, however the bytes were split into network chunks.
public struct SSEDataSplitter: Sendable {
    private var pending: [UInt8] = []

    public init() {}

    /// Appends received bytes and returns the complete `data:` payloads they finish.
    public mutating func feed(_ bytes: some Sequence<UInt8>) -> [[UInt8]] {
        pending.append(contentsOf: bytes)
        var payloads: [[UInt8]] = []
        var lineStart = 0
        while let newline = pending[lineStart...].firstIndex(of: UInt8(ascii: "\n")) {
            var line = pending[lineStart..<newline]
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            lineStart = newline + 1
            let prefix = Array("data:".utf8)
            guard line.starts(with: prefix) else { continue }  // blank separators, comments, event: lines
            var payload = line.dropFirst(prefix.count)
            if payload.first == UInt8(ascii: " ") { payload = payload.dropFirst() }
            payloads.append(Array(payload))
        }
        pending.removeFirst(lineStart)
        return payloads
    }
}
