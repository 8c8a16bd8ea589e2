/// Where one request's output stands in its grammar. Owned by the request
/// (on the engine thread); the grammar it points into is shared.
public struct GrammarMatcher: Sendable {
    public let grammar: Grammar
    private var state: Int32

    public init(_ grammar: Grammar) {
        self.grammar = grammar
        state = grammar.start
    }

    /// What may come next.
    public enum Next: Equatable, Sendable {
        /// These tokens; `mayEnd` when the output so far is complete (a stop token may end it).
        case tokens(TokenMask, mayEnd: Bool)
        /// The output is complete and nothing can extend it.
        case complete
        /// No token of the vocabulary can continue the output (or the automaton grew too large).
        case stuck(String)
    }

    public func next() -> Next {
        guard let mask = grammar.allowedTokens(at: state) else { return .stuck(Self.tooLarge) }
        let complete = grammar.isAccepting(state)
        if mask.isEmpty {
            return complete ? .complete : .stuck("no token of the vocabulary can continue the output of the constraint \(grammar.source.prefix(80))")
        }
        return .tokens(mask, mayEnd: complete)
    }

    /// Moves past `token`; false (and unchanged) when the token does not fit.
    public mutating func advance(_ token: Int) -> Bool {
        guard let next = grammar.advance(state, token: token), next != LazyDFA.dead else { return false }
        state = next
        return true
    }

    static let tooLarge = "the constraint's automaton grew past \(LazyDFA.maxStates) states"
}
