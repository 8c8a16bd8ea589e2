import Foundation
import Testing
@testable import Tokenization

/// Decoders, including the reference's quirks.
@Suite struct DecoderTests {
    @Test func sentencePieceChainStripsOnlyTheFirstSpace() throws {
        let chain = #"{"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}"#
        #expect(try TestTokenizers.decode(chain, ["▁▁Hello", "▁world", "<0xE2>", "<0x82>", "<0xAC>"]) == " Hello world€")
        let d = try TokenDecoder.make(json: TestTokenizers.parse(chain), file: "t")!
        #expect(d.decode(["▁Hello"], atStart: false) == " Hello")
    }

    @Test func metaspaceDropsEveryReplacementOfTheFirstToken() throws {
        let first = #"{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false}"#
        #expect(try TestTokenizers.decode(first, ["▁▁a", "▁b"]) == "a b")
        let never = #"{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "never", "split": false}"#
        #expect(try TestTokenizers.decode(never, ["▁a", "▁b"]) == " a b")
    }

    @Test func byteLevelIsLossyOnInvalidBytes() throws {
        #expect(try TestTokenizers.decode(#"{"type": "ByteLevel"}"#, ["Hello", "Ġw", "orld", "Ċ"]) == "Hello world\n")
        // "Ã" stands for byte 0xC3, an incomplete sequence.
        #expect(try TestTokenizers.decode(#"{"type": "ByteLevel"}"#, ["Ã", "a"]) == "\u{FFFD}a")
        #expect(try TestTokenizers.decode(#"{"type": "ByteLevel"}"#, ["Ã", "©"]) == "é")
    }

    @Test func stripRemovesFromBothEnds() throws {
        #expect(try TestTokenizers.decode(#"{"type": "Strip", "content": "x", "start": 2, "stop": 1}"#, ["xxxaxx", "b"]) == "xaxb")
    }
}
