/// An expression inside `{{ }}` or a statement, as parsed.
indirect enum Expression: Sendable {
    case literal(TemplateValue)
    case name(String, SourceLocation)
    case list([Expression])
    /// Tuples render like lists here; Jinja templates use them for unpacking and `startswith((…))`.
    case tuple([Expression])
    case dict([(Expression, Expression)])
    case attribute(Expression, String, SourceLocation)
    case item(Expression, Expression, SourceLocation)
    case slice(Expression, start: Expression?, stop: Expression?, step: Expression?, SourceLocation)
    case call(Expression, CallArguments, SourceLocation)
    case filter(Expression, name: String, CallArguments, SourceLocation)
    case test(Expression, name: String, CallArguments, negated: Bool, SourceLocation)
    case unary(String, Expression, SourceLocation)
    case binary(String, Expression, Expression, SourceLocation)
    /// Chained comparison `a < b <= c` (Python semantics: each pair must hold).
    case compare(Expression, [(String, Expression)], SourceLocation)
    case and(Expression, Expression)
    case or(Expression, Expression)
    case not(Expression)
    /// `a if cond else b`; a missing `else` yields undefined, as in Jinja.
    case conditional(condition: Expression, then: Expression, otherwise: Expression?)
}
