/// Whether bytes can still become valid UTF-8 once more bytes follow, by RFC 3629's table
/// (so overlong forms, surrogates and code points past U+10FFFF are invalid at once).
enum UTF8Prefix {
    /// Whether every complete sequence is valid and an unfinished last one is a valid start.
    static func canBecomeValid(_ bytes: some Collection<UInt8>) -> Bool {
        var i = bytes.startIndex
        while i != bytes.endIndex {
            guard let (length, second) = sequence(startingWith: bytes[i]) else { return false }
            i = bytes.index(after: i)
            for position in 1..<length {
                guard i != bytes.endIndex else { return true }  // unfinished: may still complete
                guard (position == 1 ? second : 0x80...0xBF).contains(bytes[i]) else { return false }
                i = bytes.index(after: i)
            }
        }
        return true
    }

    /// Whether bytes end with the first bytes of a sequence that more bytes may complete.
    /// Lossy decoding is final up to that point: what precedes it decodes the same whatever
    /// follows.
    static func endsInIncompleteSequence(_ bytes: [UInt8]) -> Bool {
        guard !bytes.isEmpty else { return false }
        for k in 1...min(3, bytes.count) {
            let lead = bytes[bytes.count - k]
            if (0x80...0xBF).contains(lead) { continue }  // a continuation byte: its lead, if any, is further back
            guard let (length, _) = sequence(startingWith: lead) else { return false }
            return length > k && canBecomeValid(bytes.suffix(k))
        }
        return false
    }

    /// The length of the sequence `lead` starts and the range its second byte must be in;
    /// nil for a byte no valid sequence starts with.
    private static func sequence(startingWith lead: UInt8) -> (length: Int, second: ClosedRange<UInt8>)? {
        switch lead {
        case 0x00...0x7F: return (1, 0x80...0xBF)
        case 0xC2...0xDF: return (2, 0x80...0xBF)
        case 0xE0: return (3, 0xA0...0xBF)
        case 0xED: return (3, 0x80...0x9F)
        case 0xE1...0xEC, 0xEE...0xEF: return (3, 0x80...0xBF)
        case 0xF0: return (4, 0x90...0xBF)
        case 0xF1...0xF3: return (4, 0x80...0xBF)
        case 0xF4: return (4, 0x80...0x8F)
        default: return nil
        }
    }
}
