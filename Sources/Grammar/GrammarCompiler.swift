import Foundation

/// Compiles constraints for one vocabulary and keeps the recent ones, so a
/// client that sends the same schema with every request compiles it once
/// (and its automaton and masks keep growing instead of starting over).
/// Thread-safe: request handlers compile, the engine thread walks.
public final class GrammarCompiler: @unchecked Sendable {
    public let vocabulary: TokenVocabulary
    private let lock = NSLock()
    private var recent: [GrammarSpec: Grammar] = [:]
    private var order: [GrammarSpec] = []

    /// At most this many grammars are kept (each up to 16 MB of automaton
    /// and 256 masks of vocabulary/8 bytes).
    public static let maxCachedGrammars = 8

    public init(vocabulary: TokenVocabulary) {
        self.vocabulary = vocabulary
    }

    public func compile(_ spec: GrammarSpec) throws(GrammarError) -> Grammar {
        lock.lock()
        if let hit = recent[spec] {
            order.removeAll { $0 == spec }
            order.append(spec)
            lock.unlock()
            return hit
        }
        lock.unlock()
        let grammar = try Grammar(source: spec.description, node: try spec.node(), vocabulary: vocabulary)
        // A grammar whose start allows no token is refused now rather than failing mid-request.
        switch GrammarMatcher(grammar).next() {
        case .stuck(let why): throw GrammarError(why)
        case .complete: throw GrammarError("the constraint matches only the empty output")
        case .tokens: break
        }
        lock.lock(); defer { lock.unlock() }
        recent[spec] = grammar
        order.append(spec)
        while order.count > Self.maxCachedGrammars { recent[order.removeFirst()] = nil }
        return grammar
    }
}
