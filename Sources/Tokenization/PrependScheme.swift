import ByteExactJSON
/// When Metaspace adds its replacement character ("▁") in front of a piece.
enum PrependScheme: Equatable {
    /// Before every piece that does not already start with it.
    case always
    /// Only before the piece at the very start of the input.
    case first
    /// Never.
    case never

    /// Reads `prepend_scheme`, falling back to the older boolean `add_prefix_space`.
    init(json: JSONValue, file: String, component: String) throws(TokenizerError) {
        switch json["prepend_scheme"]?.stringValue {
        case "always": self = .always
        case "first": self = .first
        case "never": self = .never
        case nil:
            self = (json["add_prefix_space"]?.boolValue ?? true) ? .always : .never
        case let other?:
            throw TokenizerError.invalidValue(file: file, component: component,
                                              detail: "unknown prepend_scheme '\(other)'")
        }
    }
}
