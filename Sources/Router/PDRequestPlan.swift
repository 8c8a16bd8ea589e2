import ByteExactJSON
import Foundation
import NIOCore
import Server

/// One client request as it goes to a prefill/decode pair: the client's JSON
/// body plus a `rid` (the client's, or one made here, so the surviving half
/// of a failed pair can be aborted by name) and, per attempt, the bootstrap
/// fields that let the decode find the prefill's KV cache. For a batch — a
/// `/generate` with a list of texts or of token-id lists, a
/// `/v1/completions` with a list of prompts — the bootstrap fields are lists
/// with one entry (one room) per item, as sglang-router 0.3.x sends them.
/// (An instance given a scalar room for a batch uses `room + i` for item
/// `i`, so either form keeps the items' rooms apart.)
struct PDRequestPlan: Sendable {
    /// The body without bootstrap fields, keys in the client's order, which
    /// is what the halves get: a JSON schema's property order is the output's order.
    let ordered: JSONValue
    /// The request ids to abort when the pair fails.
    let rids: [String]
    /// Items of a batch; nil for a single request.
    let batchSize: Int?
    let isStream: Bool
    /// What of the prefill's answer goes into the decode's.
    let mergers: [any PrefillAnswerMerger]

    init(route: String, document: JSONValue) throws(APIError) {
        guard let body = document.foundationObject as? [String: Any] else { throw .invalid("The request body must be a JSON object.") }
        var ordered = document
        let batchSize = Self.batchSize(route: route, body: body)
        self.batchSize = batchSize
        // /generate takes one rid per item; an OpenAI request has one rid, which names all its items.
        let ridsPerItem = route == "/generate" ? batchSize : nil
        switch body["rid"] {
        case let rid as String:
            rids = [rid]
        case let list as [Any]:
            let strings = list.compactMap { $0 as? String }
            guard strings.count == list.count, !strings.isEmpty else { throw .invalid("'rid' must be a string or a list of strings.", param: "rid") }
            rids = strings
        case nil, is NSNull:
            let made = (0..<(ridsPerItem ?? 1)).map { _ in UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased() }
            rids = made
            ordered = ordered.setting("rid", to: ridsPerItem == nil ? .string(made[0]) : .array(made.map(JSONValue.string)))
        default:
            throw .invalid("'rid' must be a string or a list of strings.", param: "rid")
        }
        self.ordered = ordered
        isStream = (body["stream"] as? Bool) == true
        mergers = Self.mergers(route: route, body: body)
    }

    /// A stream whose first event needs nothing of the prefill is relayed before the prefill's answer ends.
    var relaysBeforePrefillEnds: Bool { isStream && !mergers.contains(where: \.mergesIntoFirstEvent) }

    /// `/generate` gets the prefill's phases and, asking for logprobs, its
    /// input logprobs; an OpenAI route asking for `return_phases`, the
    /// prefill's phases; an echoing `/v1/completions` asking for logprobs, its prompt's.
    static func mergers(route: String, body: [String: Any]) -> [any PrefillAnswerMerger] {
        switch route {
        case "/generate":
            return [GeneratePhaseMerger()] + ((body["return_logprob"] as? Bool) == true ? [GenerateLogprobMerger()] : [])
        case "/v1/completions", "/v1/chat/completions":
            var mergers: [any PrefillAnswerMerger] = (body["return_phases"] as? Bool) == true ? [OpenAIPhaseMerger()] : []
            if route == "/v1/completions", (body["echo"] as? Bool) == true,
               !(body["logprobs"] == nil || body["logprobs"] is NSNull || (body["logprobs"] as? Bool) == false) {
                mergers.append(CompletionLogprobMerger())
            }
            return mergers
        default:
            return []
        }
    }

    /// How many items a batched request holds (nil when it is one request):
    /// lists whose items are prompts (strings or token-id lists), the same
    /// rule the instances' prompt parser applies.
    static func batchSize(route: String, body: [String: Any]) -> Int? {
        let fields: [String]
        switch route {
        case "/generate": fields = ["text", "input_ids"]
        case "/v1/completions": fields = ["prompt"]
        default: return nil
        }
        for field in fields {
            if let list = body[field] as? [Any], let first = list.first, first is String || first is [Any] {
                return list.count
            }
        }
        return nil
    }

    /// The body both halves of one attempt get: same rid, same room.
    func body(prefill: WorkerSpec) -> ByteBuffer {
        let port: JSONValue = prefill.bootstrapPort.map { .int($0) } ?? .null
        var object = ordered
        if let batchSize {
            object = object.setting("bootstrap_host", to: .array(Array(repeating: .string(prefill.host), count: batchSize)))
                .setting("bootstrap_port", to: .array(Array(repeating: port, count: batchSize)))
                .setting("bootstrap_room", to: .array((0..<batchSize).map { _ in .int(Int(Self.newRoom())) }))
        } else {
            object = object.setting("bootstrap_host", to: .string(prefill.host)).setting("bootstrap_port", to: port)
                .setting("bootstrap_room", to: .int(Int(Self.newRoom())))
        }
        return ByteBuffer(bytes: Array(object.compactText.utf8))
    }

    /// A random 63-bit room: non-negative in every signed 64-bit parser.
    static func newRoom() -> Int64 { Int64.random(in: 0...Int64.max) }
}
