import ByteExactJSON
import Foundation

/// The pattern of a `Split` pre-tokenizer or a `Replace` normalizer/decoder:
/// tokenizer.json writes it as `{"String": "…"}` (literal) or `{"Regex": "…"}`.
///
/// Regexes run on ICU through `NSRegularExpression`, which supports the Unicode classes
/// (`\p{L}`, `\p{N}`), scoped flags (`(?i:…)`) and look-ahead (`\s+(?!\S)`) used by the
/// GPT-2 / Llama 3 / Qwen patterns, and treats `\s` as the Unicode White_Space property
/// like Oniguruma does in the reference implementation.
enum TextPattern: @unchecked Sendable {
    case literal(String)
    case regex(NSRegularExpression)

    init(json: JSONValue?, file: String, component: String) throws(TokenizerError) {
        if let literal = json?["String"]?.stringValue {
            self = .literal(literal)
        } else if let pattern = json?["Regex"]?.stringValue {
            self = try TextPattern(regex: pattern, file: file, component: component)
        } else {
            throw TokenizerError.missingField(file: file, component: component, field: "pattern")
        }
    }

    init(regex pattern: String, file: String, component: String) throws(TokenizerError) {
        do {
            self = .regex(try NSRegularExpression(pattern: pattern, options: []))
        } catch {
            throw TokenizerError.invalidValue(file: file, component: component,
                                              detail: "regex '\(pattern)' does not compile: \(error)")
        }
    }

    /// Non-overlapping matches, left to right, as scalar-aligned ranges of `text`.
    func matches(in text: String) -> [Range<String.Index>] {
        switch self {
        case .literal(let needle):
            return Self.literalMatches(of: needle, in: text)
        case .regex(let regex):
            let utf16 = text.utf16
            let whole = NSRange(location: 0, length: utf16.count)
            var result: [Range<String.Index>] = []
            // Convert UTF-16 offsets by walking the UTF-16 view forward from the previous
            // boundary (matches come in order, so this is linear overall). Not
            // `Range(_:in:)`: it rejects ranges that cut a grapheme cluster, yet the
            // reference regexes routinely split "e" from a combining accent or a Devanagari
            // consonant from its vowel sign. ICU never splits a surrogate pair, so each
            // boundary is scalar-aligned.
            var index = utf16.startIndex
            var offset = 0
            func advance(to target: Int) -> String.Index {
                index = utf16.index(index, offsetBy: target - offset)
                offset = target
                return index
            }
            for match in regex.matches(in: text, options: [], range: whole) {
                let lower = advance(to: match.range.location)
                let upper = advance(to: match.range.location + match.range.length)
                result.append(lower..<upper)
            }
            return result
        }
    }

    /// `text` with every match replaced by `replacement` (inserted literally).
    func replacingMatches(in text: String, with replacement: String) -> String {
        if case .literal(let needle) = self {
            // Straight byte splice: no String.Index arithmetic at all.
            let h = Array(text.utf8)
            let offsets = Self.literalOffsets(of: Array(needle.utf8), in: h)
            if offsets.isEmpty { return text }
            let r = Array(replacement.utf8)
            let n = needle.utf8.count
            var out: [UInt8] = []
            out.reserveCapacity(h.count + offsets.count * max(0, r.count - n))
            var last = 0
            for o in offsets {
                out.append(contentsOf: h[last..<o])
                out.append(contentsOf: r)
                last = o + n
            }
            out.append(contentsOf: h[last...])
            return String(decoding: out, as: UTF8.self)
        }
        let found = matches(in: text)
        if found.isEmpty { return text }
        var out = String.UnicodeScalarView()
        var last = text.startIndex
        for range in found {
            out.append(contentsOf: text.unicodeScalars[last..<range.lowerBound])
            out.append(contentsOf: replacement.unicodeScalars)
            last = range.upperBound
        }
        out.append(contentsOf: text.unicodeScalars[last...])
        return String(out)
    }

    /// Byte-wise search: `String.range(of:)` and friends compare by canonical equivalence and
    /// grapheme clusters, which would miss a space followed by a combining mark. Needle and
    /// text are valid UTF-8, so every match starts and ends on a scalar boundary.
    private static func literalMatches(of needle: String, in text: String) -> [Range<String.Index>] {
        let n = needle.utf8.count
        let utf8 = text.utf8
        var result: [Range<String.Index>] = []
        // Walk forward from the previous match so index arithmetic stays linear overall.
        var index = utf8.startIndex
        var offset = 0
        for o in literalOffsets(of: Array(needle.utf8), in: Array(utf8)) {
            let lower = utf8.index(index, offsetBy: o - offset)
            let upper = utf8.index(lower, offsetBy: n)
            result.append(lower..<upper)
            index = upper
            offset = o + n
        }
        return result
    }

    /// Start offsets of the non-overlapping occurrences of `needle` in `haystack`, left to right.
    private static func literalOffsets(of needle: [UInt8], in haystack: [UInt8]) -> [Int] {
        guard let first = needle.first else { return [] }
        var result: [Int] = []
        var i = 0
        let n = needle.count
        while i + n <= haystack.count {
            if haystack[i] == first {
                var j = 1
                while j < n && haystack[i + j] == needle[j] { j += 1 }
                if j == n {
                    result.append(i)
                    i += n
                    continue
                }
            }
            i += 1
        }
        return result
    }
}
