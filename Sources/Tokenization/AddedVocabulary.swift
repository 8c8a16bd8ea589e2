/// The added tokens of a tokenizer and the logic that cuts them out of input text.
///
/// As in the reference, tokens with `normalized: false` are found in the raw input first;
/// the remaining text is normalized piece by piece, and tokens with `normalized: true` are
/// then found in the normalized pieces.
struct AddedVocabulary {
    /// A piece of input after added-token extraction.
    enum Segment {
        case token(Int)
        case text(PreToken)
    }

    let tokens: [AddedToken]
    private var rawTrie = AddedTokenTrie()
    private var normalizedTrie = AddedTokenTrie()

    init(tokens: [AddedToken], normalizer: Normalizer?) {
        self.tokens = tokens
        for (i, t) in tokens.enumerated() {
            if t.normalized {
                // A normalized token must be looked for in its normalized form.
                normalizedTrie.insert(normalizer?.normalize(t.content) ?? t.content, index: i)
            } else {
                rawTrie.insert(t.content, index: i)
            }
        }
    }

    /// Extracts added tokens from `text` and normalizes the text between them.
    func split(_ text: String, normalizer: Normalizer?) -> [Segment] {
        var result: [Segment] = []
        for segment in split(PreToken(text: text, isAtInputStart: true), trie: rawTrie) {
            guard case .text(let piece) = segment else {
                result.append(segment)
                continue
            }
            var normalized = piece
            if let normalizer { normalized.text = normalizer.normalize(piece.text) }
            if normalized.text.isEmpty { continue }
            result.append(contentsOf: split(normalized, trie: normalizedTrie))
        }
        return result
    }

    private func split(_ piece: PreToken, trie: AddedTokenTrie) -> [Segment] {
        if trie.isEmpty { return piece.text.isEmpty ? [] : [.text(piece)] }
        let bytes = Array(piece.text.utf8)
        var segments: [Segment] = []
        var offset = 0
        func addText(_ range: Range<Int>) {
            guard !range.isEmpty else { return }
            let text = String(decoding: bytes[range], as: UTF8.self)
            segments.append(.text(PreToken(text: text, isAtInputStart: piece.isAtInputStart && range.lowerBound == 0)))
        }
        for match in trie.matches(in: bytes) {
            let token = tokens[match.index]
            var start = match.range.lowerBound
            var end = match.range.upperBound
            if token.singleWord {
                let wordBefore = start > 0 && Self.lastScalar(bytes, before: start).map(Self.isWordScalar) == true
                let wordAfter = end < bytes.count && Self.firstScalar(bytes, at: end).map(Self.isWordScalar) == true
                if wordBefore || wordAfter { continue }
            }
            if token.lstrip {
                // Whitespace already consumed by the previous match stays with it.
                start = max(Self.whitespaceRunStart(bytes, before: start), offset)
            }
            if token.rstrip {
                end = Self.whitespaceRunEnd(bytes, from: end)
            }
            addText(offset..<start)
            segments.append(.token(token.id))
            offset = end
        }
        addText(offset..<bytes.count)
        return segments
    }

    // MARK: - Scalar helpers on UTF-8 byte arrays

    private static func isWordScalar(_ s: Unicode.Scalar) -> Bool {
        let p = s.properties
        if p.isAlphabetic || p.isJoinControl { return true }
        switch p.generalCategory {
        case .decimalNumber, .connectorPunctuation, .nonspacingMark, .spacingMark, .enclosingMark: return true
        default: return false
        }
    }

    private static func scalarLength(leadByte b: UInt8) -> Int {
        b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4
    }

    private static func firstScalar(_ bytes: [UInt8], at i: Int) -> Unicode.Scalar? {
        let n = min(scalarLength(leadByte: bytes[i]), bytes.count - i)
        return String(decoding: bytes[i..<(i + n)], as: UTF8.self).unicodeScalars.first
    }

    /// Start offset of the scalar ending just before `end`.
    private static func scalarStart(_ bytes: [UInt8], before end: Int) -> Int {
        var i = end - 1
        while i > 0 && bytes[i] & 0xC0 == 0x80 { i -= 1 }
        return i
    }

    private static func lastScalar(_ bytes: [UInt8], before end: Int) -> Unicode.Scalar? {
        let i = scalarStart(bytes, before: end)
        return String(decoding: bytes[i..<end], as: UTF8.self).unicodeScalars.first
    }

    private static func whitespaceRunStart(_ bytes: [UInt8], before end: Int) -> Int {
        var position = end
        while position > 0 {
            let i = scalarStart(bytes, before: position)
            guard let s = String(decoding: bytes[i..<position], as: UTF8.self).unicodeScalars.first,
                  s.properties.isWhitespace else { break }
            position = i
        }
        return position
    }

    private static func whitespaceRunEnd(_ bytes: [UInt8], from start: Int) -> Int {
        var position = start
        while position < bytes.count {
            guard let s = firstScalar(bytes, at: position), s.properties.isWhitespace else { break }
            position += scalarLength(leadByte: bytes[position])
        }
        return position
    }
}
