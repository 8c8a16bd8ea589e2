import ByteExactJSON
/// One entry of tokenizer.json's `added_tokens`: a string that is cut out of the input
/// whole (before the model sees it) and always maps to one id.
public struct AddedToken: Sendable, Equatable {
    /// The token id.
    public let id: Int
    /// The exact text of the token.
    public let content: String
    /// Special tokens (BOS, EOS, chat markers) are dropped by `decode(skipSpecialTokens: true)`.
    public let special: Bool
    /// Also swallow whitespace on the left / right of a match.
    public let lstrip: Bool
    public let rstrip: Bool
    /// Only match when not glued to word characters on either side.
    public let singleWord: Bool
    /// Match against normalized text (true) or the raw input (false).
    public let normalized: Bool

    init(json: JSONValue, file: String) throws(TokenizerError) {
        guard let id = json["id"]?.intValue, let content = json["content"]?.stringValue else {
            throw TokenizerError.missingField(file: file, component: "added_tokens entry", field: "id/content")
        }
        guard (0..<BPEModel.maxTokenId).contains(id) else {
            throw TokenizerError.invalidValue(file: file, component: "added_tokens entry '\(content)'", detail: "id \(id) is out of range")
        }
        self.id = id
        self.content = content
        special = json["special"]?.boolValue ?? false
        lstrip = json["lstrip"]?.boolValue ?? false
        rstrip = json["rstrip"]?.boolValue ?? false
        singleWord = json["single_word"]?.boolValue ?? false
        // The reference defaults `normalized` to the opposite of `special`.
        normalized = json["normalized"]?.boolValue ?? !special
    }
}
