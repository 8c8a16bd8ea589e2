import CompressNIO
import Foundation
import NIOCore

/// Reads and writes gzip-compressed Chrome trace JSON (`.trace.json.gz`),
/// the format Perfetto, chrome://tracing and SGLang's own traces use.
public enum ChromeTraceFile {
    /// Who recorded a trace: shown as its process in the viewer.
    public struct Source: Sendable {
        public var processName: String
        public var role: String
        public var rank: Int
        public var pid: Int32

        public init(processName: String, role: String, rank: Int = 0, pid: Int32 = getpid()) {
            self.processName = processName
            self.role = role
            self.rank = rank
            self.pid = pid
        }
    }

    /// The trace document of one recording.
    public static func document(events: [TraceEvent], threads: [Int32: String], source: Source, otherData: [String: Any]) -> [String: Any] {
        var list: [[String: Any]] = [["name": "process_name", "ph": "M", "pid": source.pid, "tid": 0, "args": ["name": source.processName]]]
        for (thread, name) in threads.sorted(by: { $0.key < $1.key }) {
            list.append(["name": "thread_name", "ph": "M", "pid": source.pid, "tid": thread, "args": ["name": name]])
        }
        list.reserveCapacity(list.count + events.count)
        for event in events { list.append(event.json(pid: source.pid)) }
        var other = otherData
        other["process"] = source.processName
        other["role"] = source.role
        other["rank"] = source.rank
        return ["traceEvents": list, "displayTimeUnit": "ms", "baseTimeNanoseconds": TraceClock.baseTimeNanoseconds(), "otherData": other]
    }

    public static func write(_ document: [String: Any], to path: String) throws {
        let json = try JSONSerialization.data(withJSONObject: document)
        var buffer = ByteBuffer(bytes: json)
        let compressed = try buffer.compress(with: .gzip())
        let url = URL(fileURLWithPath: path)
        let partial = url.deletingLastPathComponent().appendingPathComponent("." + url.lastPathComponent + ".partial")
        // Written aside and renamed, so a reader never sees half a trace.
        try Data(compressed.readableBytesView).write(to: partial)
        if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
        try FileManager.default.moveItem(at: partial, to: url)
    }

    /// A trace file as JSON (gzip or plain), refusing what is not a trace.
    public static func read(_ path: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        var json = data
        if data.starts(with: [0x1f, 0x8b]) {
            var buffer = ByteBuffer(bytes: data)
            let plain = try buffer.decompress(with: .gzip())
            json = Data(plain.readableBytesView)
        }
        guard let document = try JSONSerialization.jsonObject(with: json) as? [String: Any],
              document["traceEvents"] is [[String: Any]] else {
            throw ProfilerError(.invalid, "\(path) is not a Chrome trace (no traceEvents list)")
        }
        return document
    }
}
