import Foundation
import NIOCore
import Server

/// One client request as it goes to a prefill/decode pair: the client's JSON
/// body plus a `rid` (the client's, or one made here, so the surviving half
/// of a failed pair can be aborted by name) and, per attempt, the bootstrap
/// fields that let the decode find the prefill's KV cache. For a batched
/// `/generate` (a list of texts or of token-id lists) the bootstrap fields
/// are lists with one entry per item, as the instances expect.
struct PDRequestPlan: Sendable {
    /// The body without bootstrap fields; JSON values are immutable trees, safe to share.
    nonisolated(unsafe) let body: [String: Any]
    /// The request ids to abort when the pair fails.
    let rids: [String]
    /// Items of a batched /generate; nil for a single request.
    let batchSize: Int?
    let isStream: Bool
    let wantsLogprobs: Bool

    init(route: String, body original: [String: Any]) throws(APIError) {
        var body = original
        var batchSize: Int?
        if route == "/generate" {
            for field in ["text", "input_ids"] {
                if let list = body[field] as? [Any], let first = list.first, first is String || first is [Any] {
                    batchSize = list.count
                    break
                }
            }
        }
        self.batchSize = batchSize
        switch body["rid"] {
        case let rid as String:
            rids = [rid]
        case let list as [Any]:
            let strings = list.compactMap { $0 as? String }
            guard strings.count == list.count, !strings.isEmpty else { throw .invalid("'rid' must be a string or a list of strings.", param: "rid") }
            rids = strings
        case nil, is NSNull:
            let made = (0..<(batchSize ?? 1)).map { _ in UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased() }
            rids = made
            body["rid"] = batchSize == nil ? made[0] as Any : made as Any
        default:
            throw .invalid("'rid' must be a string or a list of strings.", param: "rid")
        }
        self.body = body
        isStream = (body["stream"] as? Bool) == true
        wantsLogprobs = route == "/generate" && (body["return_logprob"] as? Bool) == true
    }

    /// The body both halves of one attempt get: same rid, same room.
    func body(prefill: WorkerSpec) -> ByteBuffer {
        var object = body
        let port: Any = prefill.bootstrapPort ?? NSNull()
        if let batchSize {
            object["bootstrap_host"] = Array(repeating: prefill.host, count: batchSize)
            object["bootstrap_port"] = Array(repeating: port, count: batchSize)
            object["bootstrap_room"] = (0..<batchSize).map { _ in Self.newRoom() }
        } else {
            object["bootstrap_host"] = prefill.host
            object["bootstrap_port"] = port
            object["bootstrap_room"] = Self.newRoom()
        }
        return ByteBuffer(bytes: JSON.encode(object))
    }

    /// A random 63-bit room: non-negative in every signed 64-bit parser.
    static func newRoom() -> Int64 { Int64.random(in: 0...Int64.max) }
}
