/// A dictionary key that compares strings byte for byte.
///
/// Plain `String` keys compare by canonical equivalence, so "é" and "e\u{301}" would be the
/// same key; vocabularies can hold both as different tokens, and the pre-tokens we look up
/// must match exactly the bytes the reference implementation sees.
struct TokenKey: Hashable, Sendable {
    let string: String

    init(_ string: String) {
        self.string = string
    }

    static func == (lhs: TokenKey, rhs: TokenKey) -> Bool {
        lhs.string.utf8.elementsEqual(rhs.string.utf8)
    }

    func hash(into hasher: inout Hasher) {
        var s = string
        // Native strings always have contiguous UTF-8; `makeContiguousUTF8` is a no-op then.
        s.makeContiguousUTF8()
        s.utf8.withContiguousStorageIfAvailable { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}
