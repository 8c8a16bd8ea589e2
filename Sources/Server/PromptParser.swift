import Foundation
import Tokenization

/// Turns the prompt forms clients send into token ids.
enum PromptParser {
    /// What a prompt field may hold: SGLang's `text` only text, its
    /// `input_ids` only token ids, OpenAI's `prompt` either.
    enum Form {
        case text, ids, either

        var expected: String {
            switch self {
            case .text: "a string or an array of strings"
            case .ids: "an array of token ids or an array of such arrays"
            case .either: "a string, an array of strings, an array of token ids or an array of such arrays"
            }
        }
    }

    /// A single prompt: text, or a list of token ids.
    static func tokens(_ value: Any, field: String, form: Form, tokenizer: Tokenizer, addSpecialTokens: Bool = true) throws(APIError) -> [Int] {
        if let text = value as? String, form != .ids {
            // Empty text is tokenized like any other, as SGLang does: a tokenizer that adds a
            // BOS makes it a one-token prompt; one that adds nothing leaves nothing to serve.
            let ids = tokenizer.encode(text, addSpecialTokens: addSpecialTokens)
            guard !ids.isEmpty else { throw .invalid("'\(field)' is empty: it has no tokens to generate from.", param: field) }
            return ids
        }
        if let list = value as? [Any], form != .text {
            var ids: [Int] = []
            for item in list {
                ids.append(try JSONBody.bounded(item, in: RequestBounds.tokenID, or: .invalid("'\(field)' must be \(form.expected).", param: field)))
            }
            guard !ids.isEmpty else { throw .invalid("'\(field)' is empty.", param: field) }
            return ids
        }
        throw .invalid("'\(field)' must be \(form.expected).", param: field)
    }

    /// One or many prompts: a string, a list of strings, a list of ids or a list of id lists.
    static func batch(_ value: Any, field: String, form: Form, tokenizer: Tokenizer) throws(APIError) -> (prompts: [[Int]], isBatch: Bool) {
        if let list = value as? [Any], let first = list.first, first is String || first is [Any] {
            guard list.count <= 256 else { throw .invalid("'\(field)' holds \(list.count) prompts; at most 256 per request.", param: field) }
            var prompts: [[Int]] = []
            for (i, item) in list.enumerated() {
                // A batch holds prompts of one kind: strings, or id lists.
                guard (item is String) == (first is String) else { throw .invalid("'\(field)' must be \(form.expected).", param: field) }
                prompts.append(try tokens(item, field: "\(field)[\(i)]", form: form, tokenizer: tokenizer))
            }
            return (prompts, true)
        }
        if let list = value as? [Any], list.isEmpty { throw .invalid("'\(field)' is empty.", param: field) }
        return ([try tokens(value, field: field, form: form, tokenizer: tokenizer)], false)
    }
}
