import ByteExactJSON
import Foundation

/// The `pre_tokenizer` stage: cuts normalized text into the words the model encodes one
/// at a time (merges never cross a pre-token boundary).
indirect enum PreTokenizer: @unchecked Sendable {
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    case split(TextPattern, SplitDelimiterBehavior, invert: Bool)
    case metaspace(replacement: String, prependScheme: PrependScheme, split: Bool)
    case sequence([PreTokenizer])

    /// GPT-2's word pattern, used by the ByteLevel pre-tokenizer when `use_regex` is true.
    static let gpt2Pattern =
        #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#

    /// Builds the pre-tokenizer described by `json`; returns nil for JSON `null`.
    static func make(json: JSONValue?, file: String) throws(TokenizerError) -> PreTokenizer? {
        guard let json, !json.isNull else { return nil }
        let component = "pre_tokenizer"
        guard let type = json["type"]?.stringValue else {
            throw TokenizerError.missingField(file: file, component: component, field: "type")
        }
        switch type {
        case "ByteLevel":
            return .byteLevel(addPrefixSpace: json["add_prefix_space"]?.boolValue ?? true,
                              useRegex: json["use_regex"]?.boolValue ?? true)
        case "Split":
            let name = "Split pre_tokenizer"
            let pattern = try TextPattern(json: json["pattern"], file: file, component: name)
            let behavior = try SplitDelimiterBehavior(name: json["behavior"]?.stringValue, file: file, component: name)
            return .split(pattern, behavior, invert: json["invert"]?.boolValue ?? false)
        case "Metaspace":
            let replacement = json["replacement"]?.stringValue ?? "▁"
            let scheme = try PrependScheme(json: json, file: file, component: "Metaspace pre_tokenizer")
            return .metaspace(replacement: replacement, prependScheme: scheme, split: json["split"]?.boolValue ?? true)
        case "Whitespace":
            let pattern = try TextPattern(regex: #"\w+|[^\w\s]+"#, file: file, component: "Whitespace pre_tokenizer")
            return .split(pattern, .removed, invert: true)
        case "WhitespaceSplit":
            let pattern = try TextPattern(regex: #"\s+"#, file: file, component: "WhitespaceSplit pre_tokenizer")
            return .split(pattern, .removed, invert: false)
        case "Digits":
            let pattern = try TextPattern(regex: #"\p{N}"#, file: file, component: "Digits pre_tokenizer")
            let individual = json["individual_digits"]?.boolValue ?? false
            return .split(pattern, individual ? .isolated : .contiguous, invert: false)
        case "Punctuation":
            // Unicode punctuation plus ASCII punctuation (which includes symbols like `$+<=>^|~`).
            let pattern = try TextPattern(regex: #"[\p{P}!-/:-@\[-`{-~]"#, file: file, component: "Punctuation pre_tokenizer")
            let behavior = try json["behavior"].map { (v) throws(TokenizerError) in
                try SplitDelimiterBehavior(name: v.stringValue, file: file, component: "Punctuation pre_tokenizer")
            } ?? .isolated
            return .split(pattern, behavior, invert: false)
        case "CharDelimiterSplit":
            guard let delimiter = json["delimiter"]?.stringValue else {
                throw TokenizerError.missingField(file: file, component: "CharDelimiterSplit pre_tokenizer", field: "delimiter")
            }
            return .split(.literal(delimiter), .removed, invert: false)
        case "Sequence":
            guard let list = json["pretokenizers"]?.arrayValue else {
                throw TokenizerError.missingField(file: file, component: "Sequence pre_tokenizer", field: "pretokenizers")
            }
            var parts: [PreTokenizer] = []
            for item in list {
                if let p = try make(json: item, file: file) { parts.append(p) }
            }
            return .sequence(parts)
        default:
            throw TokenizerError.unsupported(file: file, component: component, type: type)
        }
    }

    /// Splits (and, for ByteLevel / Metaspace, rewrites) each piece.
    func preTokenize(_ tokens: [PreToken]) -> [PreToken] {
        switch self {
        case .sequence(let parts):
            var current = tokens
            for p in parts { current = p.preTokenize(current) }
            return current
        default:
            var out: [PreToken] = []
            out.reserveCapacity(tokens.count)
            for t in tokens { apply(to: t, into: &out) }
            return out
        }
    }

    private static let gpt2Regex: TextPattern = {
        // The pattern is a constant known to compile.
        .regex(try! NSRegularExpression(pattern: gpt2Pattern, options: []))
    }()

    private func apply(to token: PreToken, into out: inout [PreToken]) {
        switch self {
        case .sequence:
            out.append(contentsOf: preTokenize([token]))
        case .split(let pattern, let behavior, let invert):
            out.append(contentsOf: behavior.split(token, matches: pattern.matches(in: token.text), invert: invert))
        case .byteLevel(let addPrefixSpace, let useRegex):
            var t = token
            if addPrefixSpace && !t.text.utf8.starts(with: [0x20]) { t.text = " " + t.text }
            let pieces = useRegex
                ? SplitDelimiterBehavior.isolated.split(t, matches: Self.gpt2Regex.matches(in: t.text))
                : (t.text.isEmpty ? [] : [t])
            for var p in pieces {
                p.text = ByteLevelMapping.encode(p.text)
                out.append(p)
            }
        case .metaspace(let replacement, let scheme, let split):
            var t = token
            t.text = TextPattern.literal(" ").replacingMatches(in: t.text, with: replacement)
            let startsWithReplacement = t.text.unicodeScalars.starts(with: replacement.unicodeScalars)
            switch scheme {
            case .always where !startsWithReplacement: t.text = replacement + t.text
            case .first where !startsWithReplacement && t.isAtInputStart: t.text = replacement + t.text
            default: break
            }
            if split {
                let pattern = TextPattern.literal(replacement)
                out.append(contentsOf: SplitDelimiterBehavior.mergedWithNext.split(t, matches: pattern.matches(in: t.text)))
            } else if !t.text.isEmpty {
                out.append(t)
            }
        }
    }
}
