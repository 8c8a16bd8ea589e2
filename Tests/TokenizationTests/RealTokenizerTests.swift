import Foundation
import Testing
@testable import Tokenization

/// Real published tokenizers (Mistral's SentencePiece models, Qwen's BPE ranks) converted by
/// transformers' own converters, against what `tokenizers` gives on a corpus of thousands of
/// strings (tests/fixtures/real_tokenizers, made by tests/reference/make_real_tokenizer_fixtures.py).
/// Chat-template prompts are checked end to end through `pdserve tokenize` (tests/python).
@Suite struct RealTokenizerTests {
    static let names = ["mistral-v1-spm", "mistral-v3-spm", "qwen-tiktoken"]

    static let root = FixtureCase.fixturesRoot.deletingLastPathComponent().appendingPathComponent("real_tokenizers")

    struct DecodeCase: Decodable {
        let ids: [Int]
        let decoded: String
        let decoded_skip_special: String
    }

    private static func load<T: Decodable>(_ name: String, _ file: String, as: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(contentsOf: root.appendingPathComponent(name).appendingPathComponent(file)))
    }

    private static func tokenizer(_ name: String) throws -> Tokenizer {
        try Tokenizer(directory: root.appendingPathComponent(name))
    }

    /// Reports the first few mismatches and their count, so one run shows the whole picture.
    private struct Mismatches {
        var count = 0
        var examples: [String] = []
        mutating func record(_ what: @autoclosure () -> String) {
            count += 1
            if examples.count < 5 { examples.append(what()) }
        }
    }

    @Test(arguments: names)
    func encodeAndDecodeMatchTokenizers(name: String) throws {
        let t = try Self.tokenizer(name)
        let cases = try Self.load(name, "cases.json", as: [FixtureCase].self)
        #expect(cases.count >= 3000)
        var bad = Mismatches()
        for c in cases {
            let with = t.encode(c.text, addSpecialTokens: true)
            if with != c.ids_with_special { bad.record("encode \(c.text.debugDescription.prefix(120)): \(with.prefix(20)) vs \(c.ids_with_special.prefix(20))") }
            if t.encode(c.text, addSpecialTokens: false) != c.ids_without_special { bad.record("encode without special \(c.text.debugDescription.prefix(120))") }
            if !sameBytes(t.decode(c.ids_without_special, skipSpecialTokens: false), c.decoded) { bad.record("decode of \(c.text.debugDescription.prefix(120))") }
            if !sameBytes(t.decode(c.ids_with_special, skipSpecialTokens: true), c.decoded_skip_special) { bad.record("decode skipping special of \(c.text.debugDescription.prefix(120))") }
        }
        #expect(bad.count == 0, "\(name): \(bad.count) mismatches of \(cases.count * 4); first: \(bad.examples)")
    }

    /// Random id sequences heavy in byte and added tokens: decode, and streamed decode, both ways.
    @Test(arguments: names)
    func decodeAndStreamingMatchTokenizers(name: String) throws {
        let t = try Self.tokenizer(name)
        let cases = try Self.load(name, "decode_cases.json", as: [DecodeCase].self)
        #expect(cases.count >= 500)
        var bad = Mismatches()
        for c in cases {
            for (skip, expected) in [(false, c.decoded), (true, c.decoded_skip_special)] {
                let decoded = t.decode(c.ids, skipSpecialTokens: skip)
                if !sameBytes(decoded, expected) { bad.record("decode \(c.ids) skip=\(skip): \(decoded.debugDescription) vs \(expected.debugDescription)") }
                var detokenizer = IncrementalDetokenizer(tokenizer: t, skipSpecialTokens: skip)
                var streamed = c.ids.map { detokenizer.append($0) }.joined()
                streamed += detokenizer.finish()
                if !sameBytes(streamed, expected) { bad.record("stream \(c.ids) skip=\(skip): \(streamed.debugDescription) vs \(expected.debugDescription)") }
            }
        }
        #expect(bad.count == 0, "\(name): \(bad.count) mismatches of \(cases.count * 4); first: \(bad.examples)")
    }
}
