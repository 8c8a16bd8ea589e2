/// The text a request's prompt starts with, for prefix affinity: `text`,
/// `input_ids` or `prompt` (the first item of a batch), or the chat
/// messages' roles and contents in order. Token ids become decimal text,
/// so one index serves both forms.
enum RoutingKey {
    static func of(_ body: [String: Any]) -> String {
        for field in ["text", "input_ids", "prompt"] {
            if let value = body[field], let key = prompt(value) { return key }
        }
        if let messages = body["messages"] as? [[String: Any]] {
            var key = ""
            for message in messages {
                key += (message["role"] as? String ?? "") + ":"
                if let text = message["content"] as? String {
                    key += text
                } else if let parts = message["content"] as? [[String: Any]] {
                    for part in parts { key += part["text"] as? String ?? "" }
                }
                key += "\n"
            }
            return key
        }
        return ""
    }

    private static func prompt(_ value: Any) -> String? {
        if let text = value as? String { return text }
        guard let list = value as? [Any], let first = list.first else { return nil }
        if first is String || first is [Any] { return prompt(first) }
        return list.map { "\($0)," }.joined()
    }
}
