/// An error from parsing or rendering a chat template.
///
/// Syntax errors carry the line and column where parsing stopped and what was expected, so a server
/// can answer 400 with something a template author can act on.
public struct ChatTemplateError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What went wrong, broadly.
    public enum Kind: Sendable, Equatable {
        /// The template text is not valid (or uses Jinja syntax this renderer does not support).
        case syntax
        /// The template called `raise_exception(message)`; `message` is the template's text verbatim.
        case raised
        /// An undefined value was used where Jinja raises (attribute of undefined, arithmetic on it…).
        case undefined
        /// An operation got operands of the wrong type (e.g. `'a' + 1`).
        case type
        /// A resource bound was hit (output size, loop iterations, recursion depth).
        case limit
        /// Input values (messages, variables, JSON) could not be used.
        case invalidInput
    }

    /// What went wrong, broadly.
    public let kind: Kind
    /// Human-readable explanation; for `.raised`, exactly the template's message.
    public let message: String
    /// 1-based line in the template source, when known.
    public let line: Int?
    /// 1-based column in the template source, when known.
    public let column: Int?

    /// Creates an error.
    public init(kind: Kind, message: String, line: Int? = nil, column: Int? = nil) {
        self.kind = kind
        self.message = message
        self.line = line
        self.column = column
    }

    /// `raise_exception` messages are shown bare (that is what the template author wrote for the
    /// user); other errors are prefixed with their position.
    public var description: String {
        if kind == .raised { return message }
        if let line, let column { return "line \(line), column \(column): \(message)" }
        if let line { return "line \(line): \(message)" }
        return message
    }
}
