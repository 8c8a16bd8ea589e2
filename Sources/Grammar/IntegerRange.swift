/// The decimal texts (no leading zeros, `-` for negatives, no `-0`) of the
/// integers in a range, as a regular language — how JSON Schema's
/// `minimum` and `maximum` on integers become part of the automaton.
enum IntegerRange {
    static let digit = RegexNode.scalars(ScalarSet([0x30...0x39]))
    static let nonZeroDigit = RegexNode.scalars(ScalarSet([0x31...0x39]))

    /// `lower...upper`; nil bounds are unbounded.
    static func node(lower: Int?, upper: Int?) -> RegexNode {
        var branches: [RegexNode] = []
        // Negative numbers n in lower ... min(upper, -1): "-" and the magnitudes -n.
        if lower.map({ $0 < 0 }) ?? true {
            let smallest = max(1, -min(upper ?? -1, -1))
            let largest = lower.map { -$0 }
            if largest.map({ smallest <= $0 }) ?? true {
                branches.append(.sequence([.literal("-"), magnitudes(from: smallest, to: largest)]))
            }
        }
        // Non-negative numbers: max(0, lower) ... upper.
        let from = max(0, lower ?? 0)
        if upper.map({ $0 >= from }) ?? true { branches.append(magnitudes(from: from, to: upper)) }
        return branches.isEmpty ? .never : branches.count == 1 ? branches[0] : .choice(branches)
    }

    /// Non-negative integers `from...to` (to nil: unbounded).
    static func magnitudes(from: Int, to: Int?) -> RegexNode {
        let fromDigits = String(from).count
        guard let to else {
            // Everything with as many digits as `from`, then any longer number.
            let sameLength = magnitudes(from: from, to: Int(String(repeating: "9", count: fromDigits))!)
            let longer = RegexNode.sequence([nonZeroDigit, .repetition(digit, min: fromDigits, max: nil)])
            return .choice([sameLength, longer])
        }
        var branches: [RegexNode] = []
        for length in fromDigits...String(to).count {
            let low = max(from, length == 1 ? 0 : Int("1" + String(repeating: "0", count: length - 1))!)
            let high = min(to, Int(String(repeating: "9", count: length))!)
            if low <= high { branches.append(sameLength(Array(String(low).utf8), Array(String(high).utf8))) }
        }
        return branches.count == 1 ? branches[0] : .choice(branches)
    }

    /// Digit strings of one length between `low` and `high` (leading zeros allowed inside).
    private static func sameLength(_ low: [UInt8], _ high: [UInt8]) -> RegexNode {
        guard let a = low.first, let b = high.first else { return .empty }
        let restLow = Array(low.dropFirst()), restHigh = Array(high.dropFirst())
        func digits(_ x: UInt8, _ y: UInt8) -> RegexNode { .scalars(ScalarSet([UInt32(x)...UInt32(y)])) }
        if a == b { return .sequence([digits(a, a), sameLength(restLow, restHigh)]) }
        let nines = [UInt8](repeating: UInt8(ascii: "9"), count: restLow.count)
        let zeros = [UInt8](repeating: UInt8(ascii: "0"), count: restLow.count)
        var branches: [RegexNode] = [.sequence([digits(a, a), sameLength(restLow, nines)])]
        if a + 1 <= b - 1 { branches.append(.sequence([digits(a + 1, b - 1), .repetition(digit, min: restLow.count, max: restLow.count)])) }
        branches.append(.sequence([digits(b, b), sameLength(zeros, restHigh)]))
        return .choice(branches)
    }
}
