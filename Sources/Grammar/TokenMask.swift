/// Which token ids may come next: one bit per id of the vocabulary.
public struct TokenMask: Sendable, Equatable {
    private var words: [UInt64]
    public let count: Int

    public init(count: Int) {
        self.count = count
        words = Array(repeating: 0, count: (count + 63) / 64)
    }

    public func contains(_ id: Int) -> Bool {
        id >= 0 && id < count && words[id >> 6] & (1 << UInt64(id & 63)) != 0
    }

    public mutating func insert(_ id: Int) {
        guard id >= 0, id < count else { return }
        words[id >> 6] |= 1 << UInt64(id & 63)
    }

    public var isEmpty: Bool { words.allSatisfy { $0 == 0 } }

    /// Sets every logit whose id is not in the mask to -infinity, a word of
    /// 64 ids at a time (a 152k vocabulary is 2,400 words, mostly all-set
    /// or all-clear).
    public func mask(_ logits: inout [Float]) {
        logits.withUnsafeMutableBufferPointer { out in
            for (w, word) in words.enumerated() where word != .max {
                let base = w * 64
                let end = min(base + 64, out.count)
                guard base < end else { break }
                if word == 0 {
                    for i in base..<end { out[i] = -.infinity }
                } else {
                    for i in base..<end where word & (1 << UInt64(i - base)) == 0 { out[i] = -.infinity }
                }
            }
            for i in min(out.count, words.count * 64)..<out.count { out[i] = -.infinity }
        }
    }

    /// The ids in the mask, in order.
    public var members: [Int] {
        var out: [Int] = []
        for (w, word) in words.enumerated() where word != 0 {
            var bits = word
            while bits != 0 {
                out.append(w * 64 + bits.trailingZeroBitCount)
                bits &= bits - 1
            }
        }
        return out
    }
}
