import Foundation
import Testing
@testable import Tokenization

/// Pre-tokenizers against splits produced by the reference library.
@Suite struct PreTokenizerTests {
    static func split(_ behavior: String, invert: Bool) -> String {
        #"{"type": "Split", "pattern": {"String": "-"}, "behavior": "\#(behavior)", "invert": \#(invert)}"#
    }

    @Test func splitBehaviors() throws {
        let text = "a-b--c-"
        let expected: [(String, Bool, [String])] = [
            ("Removed", false, ["a", "b", "c"]),
            ("Removed", true, ["-", "-", "-", "-"]),
            ("Isolated", false, ["a", "-", "b", "-", "-", "c", "-"]),
            ("Isolated", true, ["a", "-", "b", "-", "-", "c", "-"]),
            ("MergedWithPrevious", false, ["a-", "b-", "-", "c-"]),
            ("MergedWithPrevious", true, ["a", "-b", "-", "-c", "-"]),
            ("MergedWithNext", false, ["a", "-b", "-", "-c", "-"]),
            ("MergedWithNext", true, ["a-", "b-", "-", "c-"]),
            ("Contiguous", false, ["a", "-", "b", "--", "c", "-"]),
            ("Contiguous", true, ["a", "-", "b", "--", "c", "-"]),
        ]
        for (behavior, invert, pieces) in expected {
            #expect(try TestTokenizers.preTokenize(Self.split(behavior, invert: invert), text) == pieces, "\(behavior) invert=\(invert)")
        }
    }

    @Test func otherPreTokenizers() throws {
        let text = "Hey  you, it's 1234 ok?"
        let expected: [(String, [String])] = [
            (#"{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true}"#,
             ["▁Hey", "▁", "▁you,", "▁it's", "▁1234", "▁ok?"]),
            (#"{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "never", "split": true}"#,
             ["Hey", "▁", "▁you,", "▁it's", "▁1234", "▁ok?"]),
            (#"{"type": "Digits", "individual_digits": true}"#, ["Hey  you, it's ", "1", "2", "3", "4", " ok?"]),
            (#"{"type": "Digits", "individual_digits": false}"#, ["Hey  you, it's ", "1234", " ok?"]),
            (#"{"type": "Whitespace"}"#, ["Hey", "you", ",", "it", "'", "s", "1234", "ok", "?"]),
            (#"{"type": "WhitespaceSplit"}"#, ["Hey", "you,", "it's", "1234", "ok?"]),
            (#"{"type": "Punctuation", "behavior": "Isolated"}"#, ["Hey  you", ",", " it", "'", "s 1234 ok", "?"]),
            (#"{"type": "ByteLevel", "add_prefix_space": true, "use_regex": true, "trim_offsets": true}"#,
             ["ĠHey", "Ġ", "Ġyou", ",", "Ġit", "'s", "Ġ1234", "Ġok", "?"]),
        ]
        for (config, pieces) in expected {
            #expect(try TestTokenizers.preTokenize(config, text) == pieces, "\(config)")
        }
    }

    @Test func regexSplitsInsideGraphemeClusters() throws {
        // Llama 3's pattern separates a Devanagari consonant from its vowel sign and "e" from a
        // combining accent: splits that fall inside one Swift Character. Reference pieces from
        // the Python `regex` module.
        let llama3 = #"{"type": "Split", "behavior": "Isolated", "invert": false, "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}}"#
        let pieces = try TestTokenizers.preTokenize(llama3, "नमस्ते दुनिया")
        let expected = ["\u{928}\u{92E}\u{938}", "\u{94D}\u{924}", "\u{947}", " \u{926}", "\u{941}\u{928}", "\u{93F}\u{92F}", "\u{93E}"]
        #expect(pieces.map { Array($0.unicodeScalars) } == expected.map { Array($0.unicodeScalars) })
        let accent = try TestTokenizers.preTokenize(llama3, "e\u{301}12345")
        #expect(accent.map { Array($0.unicodeScalars) } == [["e"], ["\u{301}"], ["1", "2", "3"], ["4", "5"]])
    }

    @Test func metaspaceFirstSchemeOnlyPrefixesTheStartOfInput() throws {
        let p = try PreTokenizer.make(json: TestTokenizers.parse(#"{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false}"#), file: "t")!
        let atStart = p.preTokenize([PreToken(text: "a b", isAtInputStart: true)]).map(\.text)
        let later = p.preTokenize([PreToken(text: "a b", isAtInputStart: false)]).map(\.text)
        #expect(atStart == ["▁a▁b"])
        #expect(later == ["a▁b"])
    }

    @Test func byteLevelMappingRoundTrips() {
        #expect(ByteLevelMapping.byteToScalar[0x20] == "Ġ")
        #expect(ByteLevelMapping.byteToScalar[0x0A] == "Ċ")
        #expect(ByteLevelMapping.byteToScalar[Int(UInt8(ascii: "A"))] == "A")
        #expect(Set(ByteLevelMapping.byteToScalar).count == 256)
        for b in 0..<256 { #expect(ByteLevelMapping.byte(for: ByteLevelMapping.byteToScalar[b]) == UInt8(b)) }
        let text = "héllo 👋\n"
        var bytes: [UInt8] = []
        ByteLevelMapping.appendBytes(of: ByteLevelMapping.encode(text), to: &bytes)
        #expect(bytes == Array(text.utf8))
    }
}
