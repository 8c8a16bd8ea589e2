/// The text of every token as UTF-8 bytes, sorted so that a walk through
/// the grammar's automaton shares the work of common prefixes (a trie laid
/// out flat: each token records how many leading bytes it shares with the
/// one before it). Built once per model; immutable, so any thread may read it.
public final class TokenVocabulary: Sendable {
    /// The model's vocabulary size (logit rows); may exceed the tokenizer's.
    public let count: Int
    private let order: [Int32]
    private let offsets: [Int32]
    private let bytes: [UInt8]
    private let sharedPrefix: [Int32]
    /// Each id's place in `order`, or -1.
    private let slot: [Int32]

    /// `text(id)` is the token's bytes as they appear mid-text, or nil for a
    /// token that never fits a grammar (special, unknown, or empty).
    public init(count: Int, text: (Int) -> [UInt8]?) {
        self.count = count
        var entries: [(id: Int32, bytes: [UInt8])] = []
        for id in 0..<count {
            if let t = text(id), !t.isEmpty { entries.append((Int32(id), t)) }
        }
        entries.sort { $0.bytes.lexicographicallyPrecedes($1.bytes) }
        var order: [Int32] = [], offsets: [Int32] = [0], flat: [UInt8] = [], shared: [Int32] = []
        var previous: [UInt8] = []
        for entry in entries {
            order.append(entry.id)
            flat += entry.bytes
            offsets.append(Int32(flat.count))
            shared.append(Int32(zip(previous, entry.bytes).prefix { $0 == $1 }.count))
            previous = entry.bytes
        }
        var slot = [Int32](repeating: -1, count: count)
        for (k, id) in order.enumerated() { slot[Int(id)] = Int32(k) }
        (self.order, self.offsets, self.bytes, self.sharedPrefix, self.slot) = (order, offsets, flat, shared, slot)
    }

    /// The bytes of `id`, or nil when it never fits a grammar.
    public func bytes(of id: Int) -> ArraySlice<UInt8>? {
        guard id >= 0, id < count, slot[id] >= 0 else { return nil }
        let k = Int(slot[id])
        return bytes[Int(offsets[k])..<Int(offsets[k + 1])]
    }

    /// Calls `visit` for each token in sorted order with its bytes and the
    /// length of the prefix it shares with the previous token.
    func forEach(_ visit: (_ id: Int32, _ bytes: ArraySlice<UInt8>, _ shared: Int) -> Void) {
        for k in order.indices {
            visit(order[k], bytes[Int(offsets[k])..<Int(offsets[k + 1])], Int(sharedPrefix[k]))
        }
    }
}
