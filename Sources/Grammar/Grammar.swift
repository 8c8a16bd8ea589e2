import Foundation

/// A compiled constraint for one vocabulary: the automaton of the allowed
/// outputs and, per automaton state, the tokens that keep the output a
/// prefix of an allowed one. Shared by every request with the same
/// constraint (see `GrammarCompiler`); the automaton grows as requests walk
/// it, under `lock`, so any thread may use it.
public final class Grammar: @unchecked Sendable {
    /// What it was compiled from, for logs and errors.
    public let source: String
    public let vocabulary: TokenVocabulary
    private let lock = NSLock()
    private var dfa: LazyDFA
    private var masks: [Int32: TokenMask] = [:]

    /// Masks kept per grammar; past it the cache starts over (a mask is
    /// vocabulary/8 bytes: 19 KB at 152k tokens).
    static let maxCachedMasks = 256

    init(source: String, node: RegexNode, vocabulary: TokenVocabulary) throws(GrammarError) {
        self.source = source
        self.vocabulary = vocabulary
        dfa = LazyDFA(try ByteNFA(node))
    }

    var start: Int32 { dfa.start }

    func isAccepting(_ state: Int32) -> Bool {
        lock.lock(); defer { lock.unlock() }
        return dfa.accepting[Int(state)]
    }

    /// The state after `token`'s bytes; `dead` when the token does not fit,
    /// nil when the automaton outgrew its limit.
    func advance(_ state: Int32, token: Int) -> Int32? {
        guard let bytes = vocabulary.bytes(of: token) else { return LazyDFA.dead }
        lock.lock(); defer { lock.unlock() }
        var s = state
        for byte in bytes {
            guard let next = dfa.next(s, byte) else { return nil }
            s = next
            if s == LazyDFA.dead { break }
        }
        return s
    }

    /// The tokens allowed in `state`; nil when the automaton outgrew its limit.
    func allowedTokens(at state: Int32) -> TokenMask? {
        lock.lock(); defer { lock.unlock() }
        if let cached = masks[state] { return cached }
        var mask = TokenMask(count: vocabulary.count)
        // states[d] is the automaton's state after the first d bytes of the
        // current token; a token that shares `shared` bytes with the previous
        // one resumes from there. `deadAfter`: the previous token died after
        // that many bytes, so every token sharing them dies too.
        var states: [Int32] = [state]
        var deadAfter = Int.max
        var overflow = false
        vocabulary.forEach { id, bytes, shared in
            guard !overflow, shared < deadAfter else { return }
            deadAfter = .max
            states.removeSubrange((shared + 1)...)
            var s = states[shared]
            for byte in bytes.dropFirst(shared) {
                guard let next = dfa.next(s, byte) else { overflow = true; return }
                s = next
                if s == LazyDFA.dead { deadAfter = states.count; return }
                states.append(s)
            }
            mask.insert(Int(id))
        }
        if overflow { return nil }
        if masks.count >= Self.maxCachedMasks { masks.removeAll() }
        masks[state] = mask
        return mask
    }
}
