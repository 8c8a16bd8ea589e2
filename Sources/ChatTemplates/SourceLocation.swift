/// A 1-based line and column in template source, kept on AST nodes so runtime errors can point somewhere.
struct SourceLocation: Sendable, Equatable {
    var line: Int
    var column: Int
}
