import Foundation
import Testing
@testable import Tokenization

/// Normalizers against outputs of the reference library.
@Suite struct NormalizerTests {
    @Test func normalizersMatchReference() throws {
        let input = "  \u{FF28}\u{E9}llo\t\tW\u{D6}RLD \u{FB01}  "
        let expected: [(String, String)] = [
            (#"{"type": "NFKC"}"#, "  H\u{E9}llo\t\tW\u{D6}RLD fi  "),
            (#"{"type": "Lowercase"}"#, "  \u{FF48}\u{E9}llo\t\tw\u{F6}rld \u{FB01}  "),
            (#"{"type": "Strip", "strip_left": true, "strip_right": false}"#, "\u{FF28}\u{E9}llo\t\tW\u{D6}RLD \u{FB01}  "),
            (#"{"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "}"#, " \u{FF28}\u{E9}llo W\u{D6}RLD \u{FB01} "),
            (#"{"type": "StripAccents"}"#, input),
            (#"{"type": "Sequence", "normalizers": [{"type": "NFD"}, {"type": "StripAccents"}]}"#, "  \u{FF28}ello\t\tWORLD \u{FB01}  "),
        ]
        for (config, output) in expected {
            #expect(sameBytes(try TestTokenizers.normalize(config, input), output), "\(config)")
        }
    }

    @Test func nfcComposesAndPrependSkipsEmptyText() throws {
        #expect(sameBytes(try TestTokenizers.normalize(#"{"type": "NFC"}"#, "e\u{301}"), "\u{E9}"))
        #expect(try TestTokenizers.normalize(#"{"type": "Prepend", "prepend": "▁"}"#, "") == "")
        #expect(try TestTokenizers.normalize(#"{"type": "Prepend", "prepend": "▁"}"#, "a") == "▁a")
    }

    @Test func literalReplaceIsByteExact() throws {
        // A space followed by a combining mark is one Character; it must still be replaced.
        let out = try TestTokenizers.normalize(#"{"type": "Replace", "pattern": {"String": " "}, "content": "▁"}"#, "a \u{301}b c")
        #expect(sameBytes(out, "a▁\u{301}b▁c"))
    }
}
