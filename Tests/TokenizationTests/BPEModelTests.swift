import Foundation
import Testing
@testable import Tokenization

/// The BPE model's merge order and its options, on tiny vocabularies.
@Suite struct BPEModelTests {
    @Test func mergesApplyLowestRankFirstInBothMergeForms() throws {
        let vocab = ["a", "b", "c", "ab", "bc"]
        // "b c" outranks "a b", so "abc" → a + bc.
        let stringForm = try TestTokenizers.make(model: TestTokenizers.bpeModel(vocab: vocab, merges: ["b c", "a b"]),
                                                 preTokenizer: TestTokenizers.whitespaceSplit)
        #expect(stringForm.encode("abc abc") == [0, 4, 0, 4])
        // Pair form, opposite ranking: "abc" → ab + c.
        let pairForm = try TestTokenizers.make(model: TestTokenizers.bpeModel(vocab: vocab, merges: [["a", "b"], ["b", "c"]]),
                                               preTokenizer: TestTokenizers.whitespaceSplit)
        #expect(pairForm.encode("abc abc") == [3, 2, 3, 2])
    }

    @Test func longWordsMergeLikeShortOnes() throws {
        // A 3000-character word exercises the heap path; "aa" merges pairwise from the left.
        let t = try TestTokenizers.make(model: TestTokenizers.bpeModel(vocab: ["a", "aa", "aaaa"], merges: ["a a", "aa aa"]))
        let ids = t.encode(String(repeating: "a", count: 3001))
        #expect(ids == [Int](repeating: 2, count: 750) + [0])
    }

    @Test func unknownCharactersFuseOnlyWhenAsked() throws {
        let fused = try TestTokenizers.make(model: TestTokenizers.bpeModel(vocab: ["<unk>", "a"], unk: "<unk>", fuseUnk: true))
        #expect(fused.encode("axxa") == [1, 0, 1])
        let separate = try TestTokenizers.make(model: TestTokenizers.bpeModel(vocab: ["<unk>", "a"], unk: "<unk>", fuseUnk: false))
        #expect(separate.encode("axxa") == [1, 0, 0, 1])
        // Without an unk token unknown characters are dropped.
        let none = try TestTokenizers.make(model: TestTokenizers.bpeModel(vocab: ["a"]))
        #expect(none.encode("axa") == [0, 0])
    }

    @Test func byteFallbackUsesByteTokensAndFallsBackToUnk() throws {
        let vocab = ["<unk>", "a", "<0xC3>", "<0xA9>", "<0xE2>", "<0x82>", "<0xAC>"]
        let decoder: [String: Any] = ["type": "Sequence", "decoders": [["type": "ByteFallback"], ["type": "Fuse"]]]
        let t = try TestTokenizers.make(model: TestTokenizers.bpeModel(vocab: vocab, unk: "<unk>", byteFallback: true),
                                        decoder: decoder)
        #expect(t.encode("aé") == [1, 2, 3])
        #expect(t.encode("a€") == [1, 4, 5, 6])
        #expect(t.encode("a☃") == [1, 0])  // U+2603 needs <0x98>, which is missing
        #expect(t.decode([1, 2, 3]) == "aé")
        #expect(t.decode([4, 5, 6, 1]) == "€a")
        // An incomplete byte run becomes one U+FFFD per byte, as in the reference.
        #expect(t.decode([2, 1]) == "\u{FFFD}a")
        #expect(t.decode([4, 5]) == "\u{FFFD}\u{FFFD}")
    }

    @Test func continuingSubwordPrefix() throws {
        let vocab = ["a", "b", "c", "##b", "##c", "ab", "ab##c", "abc"]
        let t = try TestTokenizers.make(model: TestTokenizers.bpeModel(vocab: vocab, merges: ["a ##b", "ab ##c"],
                                                                       continuingSubwordPrefix: "##"),
                                        preTokenizer: TestTokenizers.whitespaceSplit)
        #expect(t.encode("abc") == [7])
        #expect(t.encode("cab") == [2, 3])
        #expect(t.encode("bb") == [1, 3])
    }

    @Test func endOfWordSuffixAndBPEDecoder() throws {
        let vocab = ["a", "b", "c", "a</w>", "b</w>", "c</w>", "ab</w>", "bc</w>", "ab"]
        let t = try TestTokenizers.make(model: TestTokenizers.bpeModel(vocab: vocab, merges: ["a b</w>", "b c</w>"],
                                                                       endOfWordSuffix: "</w>"),
                                        preTokenizer: TestTokenizers.whitespaceSplit,
                                        decoder: ["type": "BPEDecoder", "suffix": "</w>"])
        #expect(t.encode("ab") == [6])
        #expect(t.encode("abc") == [0, 7])
        #expect(t.encode("cab ab") == [2, 6, 6])
        #expect(t.decode([6, 4, 3]) == "ab b a")
    }

    @Test func ignoreMergesEmitsWholeVocabularyWords() throws {
        let vocab = ["h", "e", "l", "o", "he", "ll", "hello"]
        let ignoring = try TestTokenizers.make(model: TestTokenizers.bpeModel(vocab: vocab, merges: ["h e", "l l"], ignoreMerges: true),
                                               preTokenizer: TestTokenizers.whitespaceSplit)
        #expect(ignoring.encode("hello") == [6])
        #expect(ignoring.encode("hell") == [4, 5])
        let merging = try TestTokenizers.make(model: TestTokenizers.bpeModel(vocab: vocab, merges: ["h e", "l l"]),
                                              preTokenizer: TestTokenizers.whitespaceSplit)
        #expect(merging.encode("hello") == [4, 5, 3])
    }

    @Test func canonicallyEquivalentTokensStayDistinct() throws {
        // "é" precomposed and "e" + U+0301 are different tokens; Swift String equality would merge them.
        // Written by hand: building it from a Swift dictionary would already merge the keys.
        let json = """
            {"model": {"type": "BPE", "vocab": {"e": 0, "\u{301}": 1, "e\u{301}": 2, "\u{E9}": 3}, "merges": ["e \u{301}"]}}
            """
        let t = try Tokenizer(tokenizerJSON: Data(json.utf8), tokenizerConfigJSON: nil)
        #expect(t.encode("e\u{301}") == [2])
        #expect(t.encode("\u{E9}") == [3])
        #expect(t.id(forToken: "e\u{301}") == 2)
        #expect(t.id(forToken: "\u{E9}") == 3)
    }
}
