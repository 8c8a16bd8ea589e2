import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A minimal blocking HTTP/1.1 GET, for the decode side's bootstrap
/// lookups and heartbeats, which run on transfer threads rather than in
/// an event loop.
public enum SimpleHTTP {
    public struct Reply: Sendable {
        public var status: Int
        public var body: Data
        /// Header values by lower-cased name.
        public var headers: [String: String] = [:]
    }

    public static func get(host: String, port: Int, path: String, timeout: Double, headers: [String: String] = [:]) throws -> Reply {
        try request("GET", host: host, port: port, path: path, body: nil, timeout: timeout, headers: headers)
    }

    /// POSTs a JSON body.
    public static func post(host: String, port: Int, path: String, json: Data, timeout: Double) throws -> Reply {
        try request("POST", host: host, port: port, path: path, body: json, timeout: timeout, headers: [:])
    }

    static func request(_ method: String, host: String, port: Int, path: String, body: Data?, timeout: Double, headers: [String: String]) throws -> Reply {
        let connection = try FrameConnection.connect(host: host, port: port, timeout: timeout)
        defer { connection.close() }
        connection.setReceiveTimeout(timeout)
        let authority = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(authority)\r\nConnection: close\r\nAccept: application/json\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if let body { head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n" }
        let bytes = Array((head + "\r\n").utf8) + Array(body ?? Data())
        try bytes.withUnsafeBytes { try connection.sendRaw([$0]) }
        var response = Data()
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = try chunk.withUnsafeMutableBytes { try connection.readSome(into: $0.baseAddress!, capacity: $0.count) }
            if n == 0 { break }
            response.append(contentsOf: chunk[..<n])
            guard response.count < 8 << 20 else { throw TransferError("bootstrap reply from \(host):\(port) is too large") }
            if let reply = parse(response) { return reply }
        }
        guard let reply = parse(response, complete: true) else { throw TransferError("malformed HTTP reply from \(host):\(port)") }
        return reply
    }

    /// A full reply once headers and a Content-Length body (or the whole stream) have arrived.
    private static func parse(_ data: Data, complete: Bool = false) -> Reply? {
        guard let split = data.range(of: Data("\r\n\r\n".utf8)) else { return nil }
        guard let head = String(data: data[..<split.lowerBound], encoding: .utf8) else { return nil }
        let lines = head.components(separatedBy: "\r\n")
        let parts = lines.first?.split(separator: " ") ?? []
        guard parts.count >= 2, let status = Int(parts[1]) else { return nil }
        let body = data[split.upperBound...]
        var length: Int?
        var chunked = false
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            if let colon = line.firstIndex(of: ":") {
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            let lower = line.lowercased()
            if lower.hasPrefix("content-length:") { length = Int(lower.dropFirst(15).trimmingCharacters(in: .whitespaces)) }
            if lower.hasPrefix("transfer-encoding:") && lower.contains("chunked") { chunked = true }
        }
        if let length {
            return body.count >= length ? Reply(status: status, body: Data(body.prefix(length)), headers: headers) : nil
        }
        if chunked {
            let ended = complete || body.suffix(5) == Data("0\r\n\r\n".utf8)
            return ended ? Reply(status: status, body: dechunk(Data(body)), headers: headers) : nil
        }
        return complete ? Reply(status: status, body: Data(body), headers: headers) : nil
    }

    private static func dechunk(_ data: Data) -> Data {
        var out = Data()
        var rest = data[...]
        while let lineEnd = rest.range(of: Data("\r\n".utf8)),
              let size = Int(String(decoding: rest[..<lineEnd.lowerBound], as: UTF8.self), radix: 16), size > 0 {
            let start = lineEnd.upperBound
            guard rest.distance(from: start, to: rest.endIndex) >= size else { break }
            let end = rest.index(start, offsetBy: size)
            out.append(rest[start..<end])
            rest = rest[end...].dropFirst(2)
        }
        return out
    }
}
