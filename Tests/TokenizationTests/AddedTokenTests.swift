import Foundation
import Testing
@testable import Tokenization

/// Added-token extraction: strip flags, single_word, normalized matching, longest match.
@Suite struct AddedTokenTests {
    /// A character-level model: letters, space, angle brackets; no merges.
    static let chars: [String] = (Array("abcdefghijklmnopqrstuvwxyz") + Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ") + [" ", "<", ">"]).map { String($0) }

    static func tokenizer(_ added: [[String: Any]], extraVocab: [String: Int] = [:], normalizer: Any? = nil) throws -> Tokenizer {
        var model = TestTokenizers.bpeModel(vocab: chars)
        var vocab = model["vocab"] as! [String: Int]
        vocab.merge(extraVocab) { a, _ in a }
        model["vocab"] = vocab
        return try TestTokenizers.make(model: model, normalizer: normalizer, addedTokens: added)
    }

    @Test func stripFlagsAndSingleWord() throws {
        let t = try Self.tokenizer([
            TestTokenizers.addedToken(100, "<m>", lstrip: true),
            TestTokenizers.addedToken(101, "<r>", special: false, rstrip: true),
            TestTokenizers.addedToken(102, "cat", special: false, singleWord: true),
        ], extraVocab: ["<m>": 100, "<r>": 101, "cat": 102])
        #expect(t.encode("a  <m> b") == [0, 100, 52, 1])
        #expect(t.encode("x<r>  y") == [23, 101, 24])
        #expect(t.encode("cat concat cat_ (cat)") == [102, 52, 2, 14, 13, 2, 0, 19, 52, 2, 0, 19, 52, 102])
        #expect(t.encode("<m><m>  <m>") == [100, 100, 100])
        // No decoder: tokens are joined with spaces, special ones can be skipped.
        #expect(t.decode([0, 100, 1, 101, 102]) == "a <m> b <r> cat")
        #expect(t.decode([0, 100, 1, 101, 102], skipSpecialTokens: true) == "a b <r> cat")
        #expect(t.isSpecial(100))
        #expect(!t.isSpecial(101))
        #expect(!t.isSpecial(0))
    }

    @Test func normalizedTokensMatchNormalizedText() throws {
        let t = try Self.tokenizer([
            TestTokenizers.addedToken(103, "DOG", special: false, normalized: true),
            TestTokenizers.addedToken(102, "cat", special: false, normalized: false),
        ], extraVocab: ["cat": 102, "DOG": 103], normalizer: ["type": "Lowercase"])
        #expect(t.encode("a DOG dog Dog") == [0, 52, 103, 52, 103, 52, 103])
        // A raw token only matches raw text: "CAT" is lowercased afterwards and spelled out.
        #expect(t.encode("CAT cat") == [2, 0, 19, 52, 102])
    }

    @Test func longestMatchWins() throws {
        let t = try Self.tokenizer([
            TestTokenizers.addedToken(100, "<a>"),
            TestTokenizers.addedToken(101, "<a><b>"),
        ])
        #expect(t.encode("<a><b><a>") == [101, 100])
        #expect(t.encode("<a<a>") == [53, 0, 100])
        #expect(t.vocabSize == 102)
        #expect(t.token(forId: 101) == "<a><b>")
        #expect(t.id(forToken: "<a><b>") == 101)
        #expect(t.token(forId: 99) == nil)
    }
}
