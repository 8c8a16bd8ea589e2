import Foundation

/// Numbers and booleans read out of Foundation-shaped JSON trees (what
/// `foundationObject` and `JSONSerialization` give). Both hold them as
/// `NSNumber`, and on Linux an `NSNumber` of 0, 1 or 1.0 also casts to
/// `Bool` (`x is Bool` is true), so only the Objective-C type code tells a
/// boolean from a number. Every target reads scalars through these.
public enum JSONScalar {
    /// A JSON `true` or `false`.
    public static func isBool(_ value: Any) -> Bool {
        guard let number = value as? NSNumber else { return false }
        let code = String(cString: number.objCType)
        return code == "c" || code == "B"
    }

    public static func bool(_ value: Any) -> Bool? {
        isBool(value) ? (value as? NSNumber)?.boolValue : nil
    }

    /// A JSON number that is finite (never a boolean).
    public static func number(_ value: Any) -> Double? {
        guard let number = value as? NSNumber, !isBool(value), number.doubleValue.isFinite else { return nil }
        return number.doubleValue
    }

    /// A JSON number with an integral value that fits an `Int` exactly (1 and
    /// 1.0, not 1.5, not a boolean; doubles only below 2^53).
    public static func integer(_ value: Any) -> Int? {
        guard let number = value as? NSNumber, !isBool(value) else { return nil }
        switch String(cString: number.objCType) {
        case "d", "f":
            let double = number.doubleValue
            return double.rounded() == double && abs(double) < 9.0e15 ? Int(double) : nil
        case "Q", "L", "I", "S", "C":
            // Unsigned storage: above Int.max it does not fit.
            return number.uint64Value <= UInt64(Int.max) ? Int(number.uint64Value) : nil
        default:
            return number.intValue
        }
    }

    /// A non-negative integer up to 2^64 − 1 (bootstrap rooms are random 63-bit numbers).
    public static func unsignedInteger(_ value: Any) -> UInt64? {
        guard let number = value as? NSNumber, !isBool(value) else { return nil }
        switch String(cString: number.objCType) {
        case "d", "f":
            let double = number.doubleValue
            return double >= 0 && double.rounded() == double && double < 9.0e15 ? UInt64(double) : nil
        case "Q", "L", "I", "S", "C":
            return number.uint64Value
        default:
            return number.int64Value >= 0 ? UInt64(number.int64Value) : nil
        }
    }
}
