/// An int-or-float operand, so arithmetic can follow Python's promotion rules.
enum NumericValue {
    case int(Int)
    case double(Double)

    var asDouble: Double {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        }
    }

    /// -1, 0, 1; `nil` when unordered (NaN).
    func compare(_ other: NumericValue) -> Int? {
        if case .int(let a) = self, case .int(let b) = other { return a < b ? -1 : (a == b ? 0 : 1) }
        let a = asDouble, b = other.asDouble
        if a < b { return -1 }
        if a > b { return 1 }
        if a == b { return 0 }
        return nil
    }
}
