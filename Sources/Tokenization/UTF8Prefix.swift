/// Whether bytes can still become valid UTF-8 once more bytes follow: every complete
/// sequence is valid and an unfinished last one is a valid start (RFC 3629's table, so
/// overlong forms, surrogates and code points past U+10FFFF are invalid at once).
enum UTF8Prefix {
    /// Whether bytes end with the first bytes of a sequence that more bytes may complete.
    /// Lossy decoding is final up to that point: what precedes it decodes the same whatever
    /// follows.
    static func endsInIncompleteSequence(_ bytes: [UInt8]) -> Bool {
        for k in 1...min(3, bytes.count) where bytes.count > 0 {
            let lead = bytes[bytes.count - k]
            if lead < 0x80 { return false }
            if lead < 0xC0 { continue }  // a continuation byte: its lead, if any, is further back
            return sequenceLength(lead) > k && canBecomeValid(bytes.suffix(k))
        }
        return false
    }

    /// The length of the sequence `lead` starts (0 for a byte no valid sequence starts with).
    private static func sequenceLength(_ lead: UInt8) -> Int {
        switch lead {
        case 0x00...0x7F: return 1
        case 0xC2...0xDF: return 2
        case 0xE0...0xEF: return 3
        case 0xF0...0xF4: return 4
        default: return 0
        }
    }

    static func canBecomeValid(_ bytes: some Collection<UInt8>) -> Bool {
        var i = bytes.startIndex
        while i != bytes.endIndex {
            let lead = bytes[i]
            let length: Int
            var second: ClosedRange<UInt8> = 0x80...0xBF
            switch lead {
            case 0x00...0x7F: length = 1
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; second = 0xA0...0xBF
            case 0xED: length = 3; second = 0x80...0x9F
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xF0: length = 4; second = 0x90...0xBF
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; second = 0x80...0x8F
            default: return false
            }
            i = bytes.index(after: i)
            for position in 1..<max(length, 1) where length > 1 {
                guard i != bytes.endIndex else { return true }  // unfinished: may still complete
                guard (position == 1 ? second : 0x80...0xBF).contains(bytes[i]) else { return false }
                i = bytes.index(after: i)
            }
        }
        return true
    }
}
