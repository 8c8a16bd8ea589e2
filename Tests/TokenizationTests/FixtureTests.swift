import Foundation
import Testing
@testable import Tokenization

/// Every reference case of every fixture tokenizer, compared id-for-id and byte-for-byte.
@Suite struct FixtureTests {
    @Test(arguments: FixtureCase.tokenizerNames)
    func encodeMatchesReference(name: String) throws {
        let tokenizer = try FixtureTokenizers.get(name)
        let cases = try FixtureCase.load(name)
        #expect(cases.count >= 20)
        for c in cases {
            let with = tokenizer.encode(c.text, addSpecialTokens: true)
            #expect(with == c.ids_with_special, "\(name): encode(\(c.text.debugDescription)) with special tokens")
            let without = tokenizer.encode(c.text, addSpecialTokens: false)
            #expect(without == c.ids_without_special, "\(name): encode(\(c.text.debugDescription)) without special tokens")
        }
    }

    @Test(arguments: FixtureCase.tokenizerNames)
    func decodeMatchesReference(name: String) throws {
        let tokenizer = try FixtureTokenizers.get(name)
        for c in try FixtureCase.load(name) {
            // The reference decodes the ids *without* post-processor tokens for `decoded`,
            // keeping special tokens written in the text itself.
            let decoded = tokenizer.decode(c.ids_without_special, skipSpecialTokens: false)
            #expect(sameBytes(decoded, c.decoded), "\(name): decode of \(c.text.debugDescription) gave \(decoded.debugDescription)")
            let skipped = tokenizer.decode(c.ids_with_special, skipSpecialTokens: true)
            #expect(sameBytes(skipped, c.decoded_skip_special),
                    "\(name): decode(skipSpecialTokens) of \(c.text.debugDescription) gave \(skipped.debugDescription)")
        }
    }

    @Test(arguments: FixtureCase.tokenizerNames)
    func incrementalDetokenizationMatchesDecode(name: String) throws {
        let tokenizer = try FixtureTokenizers.get(name)
        for c in try FixtureCase.load(name) {
            for skip in [false, true] {
                var detokenizer = IncrementalDetokenizer(tokenizer: tokenizer, skipSpecialTokens: skip)
                var pieces: [String] = []
                for id in c.ids_with_special { pieces.append(detokenizer.append(id)) }
                pieces.append(detokenizer.finish())
                let streamed = pieces.joined()
                let expected = tokenizer.decode(c.ids_with_special, skipSpecialTokens: skip)
                #expect(sameBytes(streamed, expected), "\(name): streaming \(c.text.debugDescription) (skip: \(skip)) gave \(streamed.debugDescription)")
                #expect(sameBytes(detokenizer.text, expected))
                if !expected.unicodeScalars.contains("\u{FFFD}") {
                    #expect(!pieces.contains { $0.unicodeScalars.contains("\u{FFFD}") },
                            "\(name): streaming \(c.text.debugDescription) emitted U+FFFD: \(pieces)")
                }
            }
        }
    }
}
