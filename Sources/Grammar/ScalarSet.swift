/// A set of Unicode scalar values as sorted, disjoint, non-adjacent ranges:
/// what one character of a regular expression may be.
struct ScalarSet: Equatable, Sendable {
    private(set) var ranges: [ClosedRange<UInt32>]

    static let maxScalar: UInt32 = 0x10FFFF
    /// UTF-16 surrogates are not scalars: no UTF-8 text contains them.
    static let surrogates: ClosedRange<UInt32> = 0xD800...0xDFFF

    init(_ ranges: [ClosedRange<UInt32>] = []) {
        self.ranges = []
        for range in ranges { insert(range) }
    }

    static func scalar(_ value: UInt32) -> ScalarSet { ScalarSet([value...value]) }
    static func ascii(_ characters: String) -> ScalarSet {
        ScalarSet(characters.unicodeScalars.map { $0.value...$0.value })
    }
    static let any = ScalarSet([0...maxScalar]).subtracting(ScalarSet([surrogates]))

    var isEmpty: Bool { ranges.isEmpty }

    mutating func insert(_ range: ClosedRange<UInt32>) {
        var lower = range.lowerBound, upper = range.upperBound
        var kept: [ClosedRange<UInt32>] = []
        var placed = false
        for r in ranges {
            if r.upperBound &+ 1 < lower {
                kept.append(r)
            } else if upper &+ 1 < r.lowerBound {
                if !placed { kept.append(lower...upper); placed = true }
                kept.append(r)
            } else {
                lower = min(lower, r.lowerBound)
                upper = max(upper, r.upperBound)
            }
        }
        if !placed { kept.append(lower...upper) }
        ranges = kept
    }

    func union(_ other: ScalarSet) -> ScalarSet {
        var result = self
        for r in other.ranges { result.insert(r) }
        return result
    }

    /// Every scalar not in this set.
    var complement: ScalarSet { Self.any.subtracting(self) }

    func subtracting(_ other: ScalarSet) -> ScalarSet {
        var result: [ClosedRange<UInt32>] = []
        for r in ranges {
            var pieces = [r]
            for cut in other.ranges {
                pieces = pieces.flatMap { piece -> [ClosedRange<UInt32>] in
                    guard cut.overlaps(piece) else { return [piece] }
                    var out: [ClosedRange<UInt32>] = []
                    if piece.lowerBound < cut.lowerBound { out.append(piece.lowerBound...(cut.lowerBound - 1)) }
                    if piece.upperBound > cut.upperBound { out.append((cut.upperBound + 1)...piece.upperBound) }
                    return out
                }
            }
            result += pieces
        }
        return ScalarSet(result)
    }

    func contains(_ value: UInt32) -> Bool { ranges.contains { $0.contains(value) } }

    /// The set as alternatives of UTF-8 byte-range sequences: a byte string
    /// is the encoding of a member exactly when one sequence matches it.
    var utf8Sequences: [[ClosedRange<UInt8>]] {
        var out: [[ClosedRange<UInt8>]] = []
        for range in ranges.flatMap({ $0.splitAtSurrogates() }) {
            // Split at the boundaries where the encoded length changes.
            var lower = range.lowerBound
            for boundary: UInt32 in [0x7F, 0x7FF, 0xFFFF, Self.maxScalar] where lower <= range.upperBound && lower <= boundary {
                let upper = min(range.upperBound, boundary)
                Self.appendAligned(lower, upper, to: &out)
                lower = upper + 1
            }
        }
        return out
    }

    /// Splits `lower...upper` (one encoded length) until each piece's bytes
    /// vary independently, so the piece is one sequence of byte ranges.
    private static func appendAligned(_ lower: UInt32, _ upper: UInt32, to out: inout [[ClosedRange<UInt8>]]) {
        let length = encode(lower).count
        if length > 1 {
            for continuationBytes in 1..<length {
                let mask: UInt32 = (1 << (6 * continuationBytes)) - 1
                guard lower & ~mask != upper & ~mask else { continue }
                if lower & mask != 0 {
                    appendAligned(lower, lower | mask, to: &out)
                    appendAligned((lower | mask) + 1, upper, to: &out)
                    return
                }
                if upper & mask != mask {
                    appendAligned(lower, (upper & ~mask) - 1, to: &out)
                    appendAligned(upper & ~mask, upper, to: &out)
                    return
                }
            }
        }
        out.append(zip(encode(lower), encode(upper)).map { $0...$1 })
    }

    static func encode(_ v: UInt32) -> [UInt8] {
        switch v {
        case ..<0x80: [UInt8(v)]
        case ..<0x800: [0xC0 | UInt8(v >> 6), 0x80 | UInt8(v & 0x3F)]
        case ..<0x10000: [0xE0 | UInt8(v >> 12), 0x80 | UInt8((v >> 6) & 0x3F), 0x80 | UInt8(v & 0x3F)]
        default: [0xF0 | UInt8(v >> 18), 0x80 | UInt8((v >> 12) & 0x3F), 0x80 | UInt8((v >> 6) & 0x3F), 0x80 | UInt8(v & 0x3F)]
        }
    }
}

private extension ClosedRange where Bound == UInt32 {
    func splitAtSurrogates() -> [ClosedRange<UInt32>] {
        ScalarSet([self]).subtracting(ScalarSet([ScalarSet.surrogates])).ranges
    }
}
