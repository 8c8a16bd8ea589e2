import Foundation

/// One function call the model made, as OpenAI returns it.
struct ToolCall: Equatable, Sendable {
    var name: String
    /// The arguments object as JSON text.
    var arguments: String

    /// An entry of `message.tool_calls` (and, with `index`, of a stream delta's).
    func openAI(id: String, index: Int? = nil) -> [String: Any] {
        var entry: [String: Any] = ["id": id, "type": "function", "function": ["name": name, "arguments": arguments]]
        if let index { entry["index"] = index }
        return entry
    }

    static func newID() -> String {
        "call_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(24)
    }
}

/// A reply split into the text meant for the user and the calls.
struct ToolCallExtraction: Equatable, Sendable {
    var content: String
    var calls: [ToolCall]
}
