/// A regular language over Unicode scalars: what the regex parser and the
/// JSON-schema translator build, and what the automaton is compiled from.
indirect enum RegexNode: Equatable, Sendable {
    /// Only the empty string.
    case empty
    /// No string at all (an unreachable branch, e.g. a recursion cut off).
    case never
    /// One scalar from the set.
    case scalars(ScalarSet)
    case sequence([RegexNode])
    case choice([RegexNode])
    /// `min` to `max` repetitions; `max` nil is unbounded.
    case repetition(RegexNode, min: Int, max: Int?)
    /// Any number of `item`s (at least one with `nonEmpty`) with `separator`
    /// between them; the automaton holds one copy of `item`, so nested JSON
    /// values grow linearly rather than doubling per level.
    case list(RegexNode, separator: RegexNode, nonEmpty: Bool)

    static func literal(_ text: String) -> RegexNode {
        .sequence(text.unicodeScalars.map { .scalars(.scalar($0.value)) })
    }

    static func optional(_ node: RegexNode) -> RegexNode { .repetition(node, min: 0, max: 1) }
    static func star(_ node: RegexNode) -> RegexNode { .repetition(node, min: 0, max: nil) }
    static func oneOf(_ characters: String) -> RegexNode { .scalars(.ascii(characters)) }
}
