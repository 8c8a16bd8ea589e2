import ByteExactJSON
import ChatTemplates
import Foundation

/// How a model family writes function calls (`--tool-call-parser`, SGLang's
/// names). A reply is split into the text before the first call and the
/// calls; a reply whose calls do not parse, or name a function the request
/// did not declare, stays text as it is — nothing the model wrote is dropped.
public enum ToolCallFormat: String, CaseIterable, Sendable {
    /// Llama 3.1–3.3: `<|python_tag|>` (or a reply that starts with `{`), then
    /// `{"name": …, "parameters": …}` objects separated by `;`.
    case llama3
    /// Qwen 2.5 and Qwen 3: `<tool_call>\n{"name": …, "arguments": …}\n</tool_call>`, repeated.
    case qwen25
    /// Mistral: `[TOOL_CALLS] [{"name": …, "arguments": …}, …]` (v0.3), or
    /// `[TOOL_CALLS]name[ARGS]{…}` (later tokenizers).
    case mistral

    /// SGLang's names, `qwen` being its newer name for `qwen25`.
    public init?(parserName: String) {
        if parserName == "qwen" { self = .qwen25 } else if let format = Self(rawValue: parserName) { self = format } else { return nil }
    }

    public static let names = "llama3, qwen25 (or qwen), mistral"

    /// Text that starts a call wherever it appears.
    var marker: String {
        switch self {
        case .llama3: "<|python_tag|>"
        case .qwen25: "<tool_call>"
        case .mistral: "[TOOL_CALLS]"
        }
    }

    /// Whether a reply that begins (after whitespace) with `{` is a call.
    var bareJSONStartsACall: Bool { self == .llama3 }

    /// Splits a whole reply.
    func extract(_ text: String, declared: Set<String>) -> ToolCallExtraction {
        let plain = ToolCallExtraction(content: text, calls: [])
        guard let (before, objects) = split(text), !objects.isEmpty else { return plain }
        var calls: [ToolCall] = []
        for object in objects {
            guard let call = Self.call(object), declared.contains(call.name) else { return plain }
            calls.append(call)
        }
        return ToolCallExtraction(content: before.trimmingCharacters(in: .whitespacesAndNewlines), calls: calls)
    }

    /// The text before the calls and the call objects; nil when there is no call or it does not parse.
    private func split(_ text: String) -> (String, [JSONValue])? {
        switch self {
        case .qwen25:
            guard let first = text.range(of: marker) else { return nil }
            var rest = text[first.lowerBound...]
            var objects: [JSONValue] = []
            while let open = rest.range(of: marker) {
                guard rest[..<open.lowerBound].allSatisfy(\.isWhitespace),
                      let close = rest.range(of: "</tool_call>", range: open.upperBound..<rest.endIndex),
                      let object = JSONSpan.value(rest[open.upperBound..<close.lowerBound]) else { return nil }
                objects.append(object)
                rest = rest[close.upperBound...]
            }
            return rest.allSatisfy(\.isWhitespace) ? (String(text[..<first.lowerBound]), objects) : nil
        case .llama3:
            let before: Substring, action: Substring
            if let tag = text.range(of: marker) {
                (before, action) = (text[..<tag.lowerBound], text[tag.upperBound...])
            } else if text.drop(while: \.isWhitespace).hasPrefix("{") {
                (before, action) = ("", text[...])
            } else {
                return nil
            }
            return JSONSpan.sequence(action, separator: ";").map { (String(before), $0) }
        case .mistral:
            guard let start = text.range(of: marker) else { return nil }
            let rest = text[start.upperBound...].drop(while: \.isWhitespace)
            if rest.hasPrefix("[") {
                guard let array = JSONSpan.value(rest)?.arrayValue else { return nil }
                return (String(text[..<start.lowerBound]), array)
            }
            return namedArguments(rest).map { (String(text[..<start.lowerBound]), $0) }
        }
    }

    /// `name[ARGS]{…}` calls, each after the first possibly behind another `[TOOL_CALLS]`.
    private func namedArguments(_ text: Substring) -> [JSONValue]? {
        var rest = text
        var objects: [JSONValue] = []
        while !rest.allSatisfy(\.isWhitespace) {
            if rest.hasPrefix(marker) { rest = rest.dropFirst(marker.count) }
            guard let args = rest.range(of: "[ARGS]") else { return nil }
            let name = rest[..<args.lowerBound].trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty, let (arguments, end) = JSONSpan.prefixValue(rest[args.upperBound...]) else { return nil }
            objects.append(.object(keys: ["name", "arguments"], values: [.string(name), arguments]))
            rest = rest[end...]
        }
        return objects
    }

    /// A call object: a non-empty `name`, and `arguments` (or Llama's `parameters`) as an object or JSON text.
    static func call(_ object: JSONValue) -> ToolCall? {
        guard let name = object["name"]?.stringValue, !name.isEmpty else { return nil }
        switch object["arguments"] ?? object["parameters"] {
        case nil, .null?: return ToolCall(name: name, arguments: "{}")
        case .string(let text)?: return ToolCall(name: name, arguments: text)
        case let value? where value.objectMembers != nil: return ToolCall(name: name, arguments: TemplateValue(json: value).pythonJSONText)
        default: return nil
        }
    }
}
