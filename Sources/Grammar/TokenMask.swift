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
