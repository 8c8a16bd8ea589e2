import ByteExactJSON
import Foundation

/// The `normalizer` stage of a tokenizer.json pipeline: rewrites each piece of input text
/// (between added tokens) before pre-tokenization.
indirect enum Normalizer: @unchecked Sendable {
    case nfc, nfd, nfkc, nfkd
    case lowercase
    case strip(left: Bool, right: Bool)
    case stripAccents
    case prepend(String)
    case replace(TextPattern, String)
    case byteLevel
    case sequence([Normalizer])

    /// Builds the normalizer described by `json`; returns nil for JSON `null`.
    static func make(json: JSONValue?, file: String) throws(TokenizerError) -> Normalizer? {
        guard let json, !json.isNull else { return nil }
        let component = "normalizer"
        guard let type = json["type"]?.stringValue else {
            throw TokenizerError.missingField(file: file, component: component, field: "type")
        }
        switch type {
        case "NFC": return .nfc
        case "NFD": return .nfd
        case "NFKC": return .nfkc
        case "NFKD": return .nfkd
        case "Lowercase": return .lowercase
        case "StripAccents": return .stripAccents
        case "ByteLevel": return .byteLevel
        case "Strip":
            return .strip(left: json["strip_left"]?.boolValue ?? true, right: json["strip_right"]?.boolValue ?? true)
        case "Prepend":
            guard let prepend = json["prepend"]?.stringValue else {
                throw TokenizerError.missingField(file: file, component: "Prepend normalizer", field: "prepend")
            }
            return .prepend(prepend)
        case "Replace":
            let pattern = try TextPattern(json: json["pattern"], file: file, component: "Replace normalizer")
            guard let content = json["content"]?.stringValue else {
                throw TokenizerError.missingField(file: file, component: "Replace normalizer", field: "content")
            }
            return .replace(pattern, content)
        case "Sequence":
            guard let list = json["normalizers"]?.arrayValue else {
                throw TokenizerError.missingField(file: file, component: "Sequence normalizer", field: "normalizers")
            }
            var parts: [Normalizer] = []
            for item in list {
                if let n = try make(json: item, file: file) { parts.append(n) }
            }
            return .sequence(parts)
        default:
            throw TokenizerError.unsupported(file: file, component: component, type: type)
        }
    }

    func normalize(_ text: String) -> String {
        switch self {
        case .nfc: return UnicodeNormalization.normalize(text, .nfc)
        case .nfd: return UnicodeNormalization.normalize(text, .nfd)
        case .nfkc: return UnicodeNormalization.normalize(text, .nfkc)
        case .nfkd: return UnicodeNormalization.normalize(text, .nfkd)
        case .lowercase: return text.lowercased()
        case .byteLevel: return ByteLevelMapping.encode(text)
        case .stripAccents:
            // Every mark (Mn, Mc, Me) of Unicode 9.0, as the reference's `is_combining_mark`.
            return UnicodeNormalization.removingMarks(text)
        case .strip(let left, let right):
            var scalars = Substring(text).unicodeScalars
            if left { while let f = scalars.first, f.properties.isWhitespace { scalars.removeFirst() } }
            if right { while let l = scalars.last, l.properties.isWhitespace { scalars.removeLast() } }
            return String(Substring(scalars))
        case .prepend(let prefix):
            // The reference only prepends to non-empty text.
            return text.isEmpty ? text : prefix + text
        case .replace(let pattern, let content):
            return pattern.replacingMatches(in: text, with: content)
        case .sequence(let parts):
            var t = text
            for p in parts { t = p.normalize(t) }
            return t
        }
    }
}
