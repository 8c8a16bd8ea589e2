import Foundation
import Testing
@testable import Tokenization

/// Streaming detokenization edge cases beyond the per-fixture equality checks.
@Suite struct IncrementalDetokenizerTests {
    /// Streams `ids` and returns what each append produced plus the final flush.
    static func stream(_ tokenizer: Tokenizer, _ ids: [Int], skip: Bool = false) -> (pieces: [String], final: String, text: String) {
        var d = IncrementalDetokenizer(tokenizer: tokenizer, skipSpecialTokens: skip)
        let pieces = ids.map { d.append($0) }
        let final = d.finish()
        return (pieces, final, d.text)
    }

    @Test(arguments: ["llama2", "mistral", "gpt2", "llama3", "qwen2"])
    func multiByteCharactersAreHeldBackUntilComplete(name: String) throws {
        let t = try FixtureTokenizers.get(name)
        // Characters absent from the tiny training corpus are split into byte tokens
        // (byte fallback or byte-level pieces).
        let text = "ok 🦩🫠 龘 done"
        let ids = t.encode(text, addSpecialTokens: false)
        let (pieces, final, streamed) = Self.stream(t, ids)
        #expect(sameBytes(streamed, t.decode(ids)))
        #expect(sameBytes(pieces.joined() + final, t.decode(ids)))
        #expect(!pieces.contains { $0.unicodeScalars.contains("\u{FFFD}") }, "\(pieces)")
        // Each emitted piece is whole characters: no piece ends inside a scalar's bytes, so
        // every piece on its own is the prefix-difference of the decoded text.
        var prefix = ""
        for p in pieces {
            prefix += p
            #expect(t.decode(ids).utf8.starts(with: prefix.utf8))
        }
    }

    /// A valid run of byte tokens is text only once a token that is not a byte ends it (or
    /// the stream finishes): until then one more byte could still make the whole run U+FFFDs.
    @Test func byteFallbackRunIsEmittedWhenItEnds() throws {
        let t = try FixtureTokenizers.get("llama2")
        let ids = t.encode("🦩", addSpecialTokens: false)
        let byteIds = ids.filter { t.token(forId: $0).flatMap(TokenDecoder.byteValue) != nil }
        #expect(byteIds.count == 4, "expected the flamingo as 4 byte-fallback tokens, got \(ids.map { t.token(forId: $0) ?? "?" })")
        let (pieces, final, _) = Self.stream(t, ids)
        #expect(pieces.allSatisfy { $0.isEmpty })
        #expect(final.unicodeScalars.contains("🦩"))
        let k = try #require(t.id(forToken: "K"))
        let ended = Self.stream(t, ids + [k])
        #expect(ended.pieces.dropLast().allSatisfy { $0.isEmpty })
        #expect(sameBytes(ended.pieces.last ?? "", t.decode(ids + [k])))
        #expect(ended.final.isEmpty)
    }

    @Test(arguments: ["llama2", "mistral"])
    func sentencePieceSpacesSurviveWindowStarts(name: String) throws {
        // Runs of spaces make lone "▁" tokens; a window starting at one must keep its space
        // (only the very first token of the text loses its leading space).
        let t = try FixtureTokenizers.get(name)
        for text in ["a  b   c    d", "Hello   world   ", "   leading", "x\n  y"] {
            let ids = t.encode(text, addSpecialTokens: true)
            for skip in [false, true] {
                let (pieces, final, streamed) = Self.stream(t, ids, skip: skip)
                #expect(sameBytes(pieces.joined() + final, t.decode(ids, skipSpecialTokens: skip)), "\(text.debugDescription) skip=\(skip)")
                #expect(sameBytes(streamed, t.decode(ids, skipSpecialTokens: skip)))
            }
        }
    }

    @Test func finishFlushesAnIncompleteCharacter() throws {
        let t = try FixtureTokenizers.get("llama2")
        let ids = t.encode("🦩", addSpecialTokens: false)
        let partial = Array(ids.prefix(ids.count - 1))
        let (pieces, final, streamed) = Self.stream(t, partial)
        #expect(pieces.allSatisfy { !$0.unicodeScalars.contains("\u{FFFD}") })
        #expect(final.unicodeScalars.contains("\u{FFFD}"))
        #expect(sameBytes(streamed, t.decode(partial)))
    }

    @Test func invalidBytesDoNotStallTheStreamForever() throws {
        // 0xFF never starts a valid UTF-8 character; the stream must still make progress.
        let t = try FixtureTokenizers.get("llama2")
        let ff = try #require(t.id(forToken: "<0xFF>"))
        let ids = [Int](repeating: ff, count: 40)
        let (pieces, final, streamed) = Self.stream(t, ids)
        #expect(pieces.filter { !$0.isEmpty }.count >= 3)
        #expect(sameBytes(pieces.joined() + final, t.decode(ids)))
        #expect(streamed.unicodeScalars.count == 40)
    }

    @Test func skippedSpecialTokensAtTheStartDoNotBreakFirstWordStripping() throws {
        let t = try FixtureTokenizers.get("llama2")
        let bos = try #require(t.bosTokenId)
        let ids = [bos, bos] + t.encode("Hello world", addSpecialTokens: false)
        let (_, _, skipped) = Self.stream(t, ids, skip: true)
        #expect(skipped == "Hello world")
        let (_, _, kept) = Self.stream(t, ids, skip: false)
        #expect(sameBytes(kept, t.decode(ids)))
    }
}

/// Sharing one tokenizer across threads, as the server does.
@Suite struct ConcurrencyTests {
    @Test func concurrentEncodingGivesTheSameIds() async throws {
        let t = try FixtureTokenizers.get("llama3")
        let cases = try FixtureCase.load("llama3")
        let results = await withTaskGroup(of: Bool.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    var ok = true
                    for (i, c) in cases.enumerated() where i % 8 == worker || i % 3 == 0 {
                        ok = ok && t.encode(c.text) == c.ids_with_special
                    }
                    return ok
                }
            }
            var all: [Bool] = []
            for await r in group { all.append(r) }
            return all
        }
        #expect(results.count == 8 && results.allSatisfy { $0 })
    }

    /// HF's ByteFallback decoder takes a maximal run of `<0xNN>` tokens as one unit: valid
    /// UTF-8 becomes its text, anything else one U+FFFD per byte — valid bytes inside the run
    /// included. Streaming must reach exactly the same text, so a run is emitted only once
    /// the run has ended. Expected values are `tokenizers` 0.23 on the llama2 fixture.
    @Test func invalidByteFallbackRunsDecodeAndStreamAsTheReference() throws {
        let t = try FixtureTokenizers.get("llama2")
        func b(_ byte: Int) -> Int { 3 + byte }  // <0x00> is id 3
        let cases: [([Int], String, String)] = [
            ([b(0x41), b(0xE2), b(0x60)], "\u{FFFD}\u{FFFD}\u{FFFD}", "\u{FFFD}\u{FFFD}\u{FFFD}"),
            ([b(0xE2), b(0x60)], "\u{FFFD}\u{FFFD}", "\u{FFFD}\u{FFFD}"),
            ([b(0xE2), b(0x82)], "\u{FFFD}\u{FFFD}", "\u{FFFD}\u{FFFD}"),
            ([300, b(0xE2), b(0x82), b(0xAC), 301], "K\u{20AC}L", "K\u{20AC}L"),  // 300 = "K", 301 = "L"
            ([b(0x61), b(0xE2), b(0x82), b(0xAC), b(0x61)], "a\u{20AC}a", "a\u{20AC}a"),
            ([b(0xC3), b(0xA9), b(0xFF)], "\u{FFFD}\u{FFFD}\u{FFFD}", "\u{FFFD}\u{FFFD}\u{FFFD}"),
            ([b(0x41), 1, b(0xE2)], "A<s>\u{FFFD}", "\u{FFFD}\u{FFFD}"),
            ([b(0xC3), b(0xA9), 300, b(0xC3), b(0xA9), b(0xC3)], "\u{E9}K\u{FFFD}\u{FFFD}\u{FFFD}", "\u{E9}K\u{FFFD}\u{FFFD}\u{FFFD}"),
        ]
        for (ids, keep, skip) in cases {
            #expect(sameBytes(t.decode(ids, skipSpecialTokens: false), keep), "decode \(ids)")
            #expect(sameBytes(t.decode(ids, skipSpecialTokens: true), skip), "decode \(ids) skipping special tokens")
            #expect(sameBytes(IncrementalDetokenizerTests.stream(t, ids, skip: false).text, keep), "stream \(ids): \(IncrementalDetokenizerTests.stream(t, ids).pieces)")
            #expect(sameBytes(IncrementalDetokenizerTests.stream(t, ids, skip: true).text, skip), "stream \(ids) skipping: \(IncrementalDetokenizerTests.stream(t, ids, skip: true).pieces)")
        }
    }
}
