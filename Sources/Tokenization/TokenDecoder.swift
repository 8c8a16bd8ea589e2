import ByteExactJSON
/// The `decoder` stage: turns the token strings of a sequence of ids back into text.
///
/// Each case transforms a list of token strings into another list (the reference's
/// `decode_chain`); the final list is concatenated.
indirect enum TokenDecoder: @unchecked Sendable {
    case byteLevel
    case byteFallback
    case fuse
    case metaspace(replacement: String, prependScheme: PrependScheme)
    case replace(TextPattern, String)
    case strip(content: Unicode.Scalar, start: Int, stop: Int)
    /// Classic BPE decoder: the end-of-word suffix becomes a space (none after the last token).
    case bpe(suffix: String)
    case sequence([TokenDecoder])

    static func make(json: JSONValue?, file: String) throws(TokenizerError) -> TokenDecoder? {
        guard let json, !json.isNull else { return nil }
        guard let type = json["type"]?.stringValue else {
            throw TokenizerError.missingField(file: file, component: "decoder", field: "type")
        }
        switch type {
        case "ByteLevel": return .byteLevel
        case "ByteFallback": return .byteFallback
        case "Fuse": return .fuse
        case "Metaspace":
            let scheme = try PrependScheme(json: json, file: file, component: "Metaspace decoder")
            return .metaspace(replacement: json["replacement"]?.stringValue ?? "▁", prependScheme: scheme)
        case "Replace":
            let pattern = try TextPattern(json: json["pattern"], file: file, component: "Replace decoder")
            guard let content = json["content"]?.stringValue else {
                throw TokenizerError.missingField(file: file, component: "Replace decoder", field: "content")
            }
            return .replace(pattern, content)
        case "Strip":
            guard let content = json["content"]?.stringValue, let scalar = content.unicodeScalars.first,
                  content.unicodeScalars.count == 1 else {
                throw TokenizerError.missingField(file: file, component: "Strip decoder", field: "content")
            }
            return .strip(content: scalar, start: json["start"]?.intValue ?? 0, stop: json["stop"]?.intValue ?? 0)
        case "BPEDecoder":
            return .bpe(suffix: json["suffix"]?.stringValue ?? "</w>")
        case "Sequence":
            guard let list = json["decoders"]?.arrayValue else {
                throw TokenizerError.missingField(file: file, component: "Sequence decoder", field: "decoders")
            }
            var parts: [TokenDecoder] = []
            for item in list {
                if let d = try make(json: item, file: file) { parts.append(d) }
            }
            return .sequence(parts)
        default:
            throw TokenizerError.unsupported(file: file, component: "decoder", type: type)
        }
    }

    /// Whether a ByteLevel step is part of this decoder (then non-special added tokens are
    /// byte-encoded before decoding so their text survives the byte mapping).
    var containsByteLevel: Bool { contains { if case .byteLevel = $0 { true } else { false } } }

    /// Whether a ByteFallback step is part of this decoder (then a run of byte tokens is
    /// text only once it has ended: see `IncrementalDetokenizer`).
    var containsByteFallback: Bool { contains { if case .byteFallback = $0 { true } else { false } } }

    private func contains(_ step: (TokenDecoder) -> Bool) -> Bool {
        if case .sequence(let parts) = self { return parts.contains { $0.contains(step) } }
        return step(self)
    }

    /// Decodes `tokens` to text.
    ///
    /// `atStart` says whether these tokens begin the whole text. The Strip and Metaspace
    /// decoders remove the space that encoding put in front of the first word; when decoding
    /// a window in the middle of a stream (incremental detokenization) that space is real
    /// text and must stay.
    func decode(_ tokens: [String], atStart: Bool = true) -> String {
        decodeChain(tokens, atStart: atStart).joined()
    }

    func decodeChain(_ tokens: [String], atStart: Bool) -> [String] {
        switch self {
        case .sequence(let parts):
            var current = tokens
            for p in parts { current = p.decodeChain(current, atStart: atStart) }
            return current
        case .fuse:
            return [tokens.joined()]
        case .byteLevel:
            var bytes: [UInt8] = []
            for t in tokens { ByteLevelMapping.appendBytes(of: t, to: &bytes) }
            // Lossy like the reference: each maximal invalid subsequence becomes one U+FFFD.
            return [String(decoding: bytes, as: UTF8.self)]
        case .byteFallback:
            return Self.decodeByteFallback(tokens)
        case .replace(let pattern, let content):
            return tokens.map { pattern.replacingMatches(in: $0, with: content) }
        case .metaspace(let replacement, let scheme):
            let space = String.UnicodeScalarView(" ".unicodeScalars)
            return tokens.enumerated().map { i, token in
                // The reference drops every replacement char of the first token (not just
                // a leading one) unless the scheme is "never".
                let dropReplacement = i == 0 && atStart && scheme != .never
                let marker = replacement.unicodeScalars
                guard marker.count == 1, let r = marker.first else {
                    return TextPattern.literal(replacement).replacingMatches(in: token, with: dropReplacement ? "" : " ")
                }
                var out = String.UnicodeScalarView()
                for s in token.unicodeScalars {
                    if s == r {
                        if !dropReplacement { out.append(contentsOf: space) }
                    } else {
                        out.append(s)
                    }
                }
                return String(out)
            }
        case .strip(let content, let start, let stop):
            return tokens.map { token in
                let scalars = Array(token.unicodeScalars)
                var lower = 0
                if atStart {
                    while lower < min(start, scalars.count) && scalars[lower] == content { lower += 1 }
                }
                var upper = scalars.count
                var removed = 0
                while removed < stop && upper > lower && scalars[upper - 1] == content {
                    upper -= 1
                    removed += 1
                }
                var out = String.UnicodeScalarView()
                out.append(contentsOf: scalars[lower..<upper])
                return String(out)
            }
        case .bpe(let suffix):
            return tokens.enumerated().map { i, token in
                TextPattern.literal(suffix).replacingMatches(in: token, with: i == tokens.count - 1 ? "" : " ")
            }
        }
    }

    /// Runs of `<0xNN>` tokens become the text of their bytes; an invalid run becomes one
    /// U+FFFD per byte, as in the reference.
    private static func decodeByteFallback(_ tokens: [String]) -> [String] {
        var out: [String] = []
        out.reserveCapacity(tokens.count)
        var pending: [UInt8] = []
        func flush() {
            guard !pending.isEmpty else { return }
            if let s = String(validating: pending, as: UTF8.self) {
                out.append(s)
            } else {
                out.append(contentsOf: repeatElement("\u{FFFD}", count: pending.count))
            }
            pending.removeAll(keepingCapacity: true)
        }
        for token in tokens {
            if let b = byteValue(token) {
                pending.append(b)
            } else {
                flush()
                out.append(token)
            }
        }
        flush()
        return out
    }

    /// The byte of a `<0xNN>` token, else nil.
    static func byteValue(_ token: String) -> UInt8? {
        guard token.utf8.count == 6 else { return nil }
        let u = Array(token.utf8)
        guard u[0] == UInt8(ascii: "<"), u[1] == UInt8(ascii: "0"), u[2] == UInt8(ascii: "x"),
              u[5] == UInt8(ascii: ">") else { return nil }
        return UInt8(String(decoding: u[3..<5], as: UTF8.self), radix: 16)
    }
}
