@testable import Grammar
import Testing

/// The mask walk over the sorted vocabulary agrees with walking each token
/// on its own, and a matcher's outputs are exactly the language.
struct TokenMaskTests {
    static let pieces = ["{", "}", "\"", "a", "ab", "abc", "b", "\"a", "\"}", "1", "12", "123", ":", ",", " ", "é", "\u{FFFD}",
                         "{\"", "\":", "true", "tr", "ue", "null", "-", ".5", "[", "]"]
    /// Id 2 is special (no text), id `pieces.count + 2` is beyond the tokenizer.
    static func vocabulary() -> TokenVocabulary {
        TokenVocabulary(count: pieces.count + 3) { id in
            id == 2 ? nil : id < 2 ? Array(pieces[id].utf8) : id - 1 < pieces.count ? Array(pieces[id - 1].utf8) : nil
        }
    }

    func bruteForce(_ grammar: Grammar, state: Int32) -> [Int] {
        (0..<grammar.vocabulary.count).filter { id in
            guard let next = grammar.advance(state, token: id) else { return false }
            return next != LazyDFA.dead
        }
    }

    @Test func maskEqualsTokenByTokenWalk() throws {
        let compiler = GrammarCompiler(vocabulary: Self.vocabulary())
        for spec in [GrammarSpec.jsonObject, .regex("(ab|c)*\"?[0-9]{1,3}"), .jsonSchema(#"{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]}"#)] {
            let grammar = try compiler.compile(spec)
            var frontier: [Int32] = [grammar.start]
            var seen = Set<Int32>()
            while let state = frontier.popLast(), seen.count < 200 {
                guard seen.insert(state).inserted else { continue }
                let mask = try #require(grammar.allowedTokens(at: state))
                #expect(mask.members == bruteForce(grammar, state: state), "\(spec) state \(state)")
                for id in mask.members { frontier.append(grammar.advance(state, token: id)!) }
            }
        }
    }

    /// Ids: 0 "{", 1 "}", 2 special, then piece k has id k + 1 ("a" 4, "ab" 5, "abc" 6, "b" 7).
    @Test func aMatcherEndsExactlyWhenTheOutputIsComplete() throws {
        let compiler = GrammarCompiler(vocabulary: Self.vocabulary())
        var matcher = GrammarMatcher(try compiler.compile(.regex("ab(b)?")))
        do { let ok = matcher.advance(7); #expect(!ok) }
        do { let ok = matcher.advance(2); #expect(!ok) }
        do { let ok = matcher.advance(5); #expect(ok) }
        #expect(matcher.next() == .tokens(Self.mask([7]), mayEnd: true))
        do { let ok = matcher.advance(7); #expect(ok) }
        #expect(matcher.next() == .complete)
        var partial = GrammarMatcher(try compiler.compile(.regex("abc")))
        #expect(partial.next() == .tokens(Self.mask([4, 5, 6]), mayEnd: false))
    }

    static func mask(_ ids: [Int]) -> TokenMask {
        var mask = TokenMask(count: pieces.count + 3)
        for id in ids { mask.insert(id) }
        return mask
    }

    @Test func aGrammarNoTokenCanStartIsRefused() {
        let compiler = GrammarCompiler(vocabulary: Self.vocabulary())
        #expect { try compiler.compile(.regex("zzz")) } throws: { ($0 as? GrammarError)?.message.contains("no token") == true }
    }

    /// Masking logits a word at a time leaves exactly the members finite,
    /// whatever the fill of each word; ids past the mask's count are masked.
    @Test func maskingLogitsKeepsExactlyTheMembers() {
        var rng = SystemRandomNumberGenerator()
        for count in [0, 1, 63, 64, 65, 200, 1000] {
            for density in [0.0, 0.03, 0.5, 0.97, 1.0] {
                var mask = TokenMask(count: count)
                for id in 0..<count where Double.random(in: 0..<1, using: &rng) < density { mask.insert(id) }
                if density == 1 { for id in 0..<count { mask.insert(id) } }
                var logits = (0..<(count + 7)).map { Float($0) }
                mask.mask(&logits)
                #expect(logits.indices.allSatisfy { logits[$0].isFinite == mask.contains($0) }, "count \(count) density \(density)")
            }
        }
    }

    @Test func compiledGrammarsAreShared() throws {
        let compiler = GrammarCompiler(vocabulary: Self.vocabulary())
        #expect(try compiler.compile(.jsonObject) === compiler.compile(.jsonObject))
    }
}
