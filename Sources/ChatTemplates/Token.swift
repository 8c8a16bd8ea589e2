/// One lexical token of a template.
struct Token: Sendable, Equatable {
    var kind: TokenKind
    var location: SourceLocation
}
