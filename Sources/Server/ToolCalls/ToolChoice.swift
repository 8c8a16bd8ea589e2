import ByteExactJSON
import Foundation

/// A chat request's `tool_choice`. `required` and a named function force a
/// call the way SGLang does: the reply is constrained to a JSON array of
/// `{"name": …, "parameters": …}` objects valid for the declared functions,
/// and that array becomes the reply's `tool_calls` — with or without a
/// `--tool-call-parser`.
enum ToolChoice: Equatable {
    case none
    case auto
    /// At least one call (`required`: any declared function; named: that one).
    case forced(function: String?)

    init(_ body: JSONBody) throws(APIError) {
        let declared = Self.declaredNames(body)
        switch body.fields["tool_choice"] {
        case nil, is NSNull: self = .auto
        case let mode as String where mode == "none": self = .none
        case let mode as String where mode == "auto": self = .auto
        case let mode as String where mode == "required":
            guard !declared.isEmpty else { throw .invalid("'tool_choice' required needs at least one function in 'tools'.", param: "tool_choice") }
            self = .forced(function: nil)
        case let named as [String: Any]:
            guard named["type"] as? String == "function", let name = (named["function"] as? [String: Any])?["name"] as? String else {
                throw .invalid("'tool_choice' must be none, auto, required or {\"type\": \"function\", \"function\": {\"name\": …}}.", param: "tool_choice")
            }
            guard declared.contains(name) else { throw .invalid("'tool_choice' names '\(name)', which 'tools' does not declare.", param: "tool_choice") }
            self = .forced(function: name)
        default:
            throw .invalid("'tool_choice' must be none, auto, required or {\"type\": \"function\", \"function\": {\"name\": …}}.", param: "tool_choice")
        }
    }

    static func declaredNames(_ body: JSONBody) -> [String] {
        ((body.fields["tools"] as? [Any]) ?? []).compactMap { (($0 as? [String: Any])?["function"] as? [String: Any])?["name"] as? String }
    }

    /// The schema a forced reply must follow (SGLang's): an array of at least
    /// one call, at most one unless `parallel_tool_calls` allows more.
    func schema(_ body: JSONBody) throws(APIError) -> JSONValue? {
        guard case .forced(let function) = self else { return nil }
        var calls: [JSONValue] = []
        for tool in body.ordered?["tools"]?.arrayValue ?? [] {
            guard let name = tool["function"]?["name"]?.stringValue, function == nil || function == name else { continue }
            let parameters = tool["function"]?["parameters"].flatMap { $0.isNull ? nil : $0 }
                ?? .object(keys: ["type", "properties"], values: [.string("object"), .object(keys: [], values: [])])
            calls.append(.object(keys: ["type", "properties", "required"], values: [
                .string("object"),
                .object(keys: ["name", "parameters"], values: [.object(keys: ["type", "enum"], values: [.string("string"), .array([.string(name)])]), parameters]),
                .array([.string("name"), .string("parameters")]),
            ]))
        }
        let parallel = try body.bool("parallel_tool_calls") ?? true
        var keys = ["type", "minItems", "items"]
        var values: [JSONValue] = [.string("array"), .int(1), calls.count == 1 ? calls[0] : .object(keys: ["anyOf"], values: [.array(calls)])]
        if !parallel {
            keys.append("maxItems")
            values.append(.int(1))
        }
        return .object(keys: keys, values: values)
    }

    /// The calls of a forced reply; nil when it is not such an array (it
    /// ended early, at max_tokens).
    static func calls(inForcedReply text: String) -> [ToolCall]? {
        guard let array = (try? JSONParser.parse(Data(text.utf8)))?.arrayValue, !array.isEmpty else { return nil }
        var calls: [ToolCall] = []
        for object in array {
            guard let call = ToolCallFormat.call(object) else { return nil }
            calls.append(call)
        }
        return calls
    }
}

/// How a chat reply's calls are found: by the model family's format, or as
/// the JSON array a forced `tool_choice` made the model write.
enum ToolCallReader {
    case format(ToolCallFormat, declared: Set<String>)
    case forced

    /// Splits a whole reply into text and calls; what does not parse stays text.
    func extract(_ text: String) -> ToolCallExtraction {
        switch self {
        case let .format(format, declared): return format.extract(text, declared: declared)
        case .forced: return ToolChoice.calls(inForcedReply: text).map { ToolCallExtraction(content: "", calls: $0) } ?? ToolCallExtraction(content: text, calls: [])
        }
    }
}
