import Foundation
import Testing
@testable import Tokenization

/// PDServe's NFC/NFD/NFKC/NFKD against what the `tokenizers` library makes of Unicode's whole
/// normalization test data and of every code point it changes
/// (tests/fixtures/unicode/normalization.txt, see tests/reference/make_normalization_fixtures.py).
@Suite struct UnicodeNormalizationTests {
    /// The tokenizer pipeline's normalizer stages, as a tokenizer.json names them.
    private static let forms: [(String, Normalizer)] = [("NFC", .nfc), ("NFD", .nfd), ("NFKC", .nfkc), ("NFKD", .nfkd)]

    private struct Line {
        let source: [UInt32]
        let expected: [[UInt32]]  // NFC, NFD, NFKC, NFKD
    }

    private static func lines() throws -> [Line] {
        let url = FixtureCase.fixturesRoot.deletingLastPathComponent().appendingPathComponent("unicode/normalization.txt")
        let text = try String(contentsOf: url, encoding: .utf8)
        return text.split(separator: "\n").compactMap { line in
            guard !line.hasPrefix("#") else { return nil }
            let columns = line.split(separator: ";", omittingEmptySubsequences: false)
                .map { $0.split(separator: " ").map { UInt32($0, radix: 16)! } }
            return Line(source: columns[0], expected: Array(columns[1...]))
        }
    }

    private static func string(_ scalars: [UInt32]) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars.map { Unicode.Scalar($0)! })
        return String(view)
    }

    @Test func everyLineOfTheTestDataMatchesTokenizers() throws {
        let lines = try Self.lines()
        #expect(lines.count > 19_000)
        var mismatches: [String] = []
        for line in lines {
            let source = Self.string(line.source)
            for (index, (name, form)) in Self.forms.enumerated() {
                let got = form.normalize(source).unicodeScalars.map(\.value)
                if got != line.expected[index] {
                    mismatches.append("\(name)(\(hex(line.source))) = \(hex(got)), tokenizers: \(hex(line.expected[index]))")
                }
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches, first: \(mismatches.prefix(8))")
    }

    /// The fixture lists every single code point that tokenizers changes; every other one
    /// must have no decomposition here either.
    @Test func everyOtherCodePointIsLeftAlone() throws {
        let changed = Set(try Self.lines().filter { $0.source.count == 1 }.map { $0.source[0] })
        let data = NormalizationData.shared
        let extra = (UInt32(0)...0x10FFFF).filter { cp in
            !(0xD800...0xDFFF).contains(cp) && !changed.contains(cp)
                && (data.canonical[cp] != nil || data.compatibility[cp] != nil || (0xAC00...0xD7A3).contains(cp))
        }
        #expect(extra.isEmpty, "decomposed here but not by tokenizers: \(extra.prefix(8).map { String($0, radix: 16) })")
    }

    /// The two faults of Foundation's composition on this toolchain, and a mark that
    /// Unicode 10 assigned (unassigned for tokenizers: neither reordered nor composed).
    @Test func knownFoundationFaultsAndPostUnicode9Marks() {
        #expect(sameBytes(Normalizer.nfc.normalize("\u{AC00}\u{11A8}"), "\u{AC01}"))
        #expect(sameBytes(Normalizer.nfc.normalize("\u{20073}\u{327}"), "\u{20073}\u{327}"))
        #expect(sameBytes(Normalizer.nfkc.normalize("\u{20073}\u{327}"), "\u{20073}\u{327}"))
        #expect(sameBytes(Normalizer.nfc.normalize("a\u{1DF6}\u{301}"), "a\u{1DF6}\u{301}"))
        #expect(sameBytes(Normalizer.nfc.normalize("a\u{301}\u{1DF6}"), "\u{E1}\u{1DF6}"))
        #expect(sameBytes(Normalizer.nfc.normalize("e\u{1D165}\u{301}"), "\u{E9}\u{1D165}"))
    }

    /// StripAccents removes every mark of Unicode 9.0 (Mn, Mc, Me) as the reference does,
    /// and keeps a mark assigned later.
    @Test func stripAccentsRemovesAllMarksOfUnicode9() throws {
        let out = try TestTokenizers.normalize(#"{"type": "StripAccents"}"#, "a\u{93E}b\u{20DD}c\u{301}d\u{1DF6}e")
        #expect(sameBytes(out, "abcd\u{1DF6}e"))
    }

    private func hex(_ scalars: [UInt32]) -> String {
        scalars.map { String($0, radix: 16, uppercase: true) }.joined(separator: " ")
    }
}
