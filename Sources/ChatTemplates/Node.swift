/// A statement of the template body.
indirect enum Node: Sendable {
    case text(String)
    case output(Expression, SourceLocation)
    case conditional(branches: [(Expression, [Node])], otherwise: [Node])
    case forLoop(target: AssignTarget, iterable: Expression, filter: Expression?, body: [Node], otherwise: [Node], SourceLocation)
    case set(AssignTarget, Expression, SourceLocation)
    case setBlock(AssignTarget, body: [Node], filters: [(String, CallArguments, SourceLocation)], SourceLocation)
    case macro(name: String, parameters: [(String, Expression?)], body: [Node])
    /// `{% call(params) macro(args) %}body{% endcall %}`: the body becomes `caller()` inside the macro.
    case callBlock(callerParameters: [(String, Expression?)], call: Expression, body: [Node], SourceLocation)
    case filterBlock(filters: [(String, CallArguments, SourceLocation)], body: [Node])
    case breakLoop(SourceLocation)
    case continueLoop(SourceLocation)
}
