import Foundation

extension JSONValue {
    /// The value in `JSONSerialization`'s shapes (`[String: Any]`, `[Any]`, `String`,
    /// `NSNumber`, `NSNull`) for code written against them. Unlike `JSONSerialization`,
    /// every string is exactly what was sent: corelibs Foundation drops a U+FEFF at the start
    /// of a string value, which would change a prompt's tokens. A repeated key keeps its
    /// last value, as Python's `json` does.
    public var foundationObject: Any {
        switch self {
        case .null: return NSNull()
        case .bool(let b): return NSNumber(value: b)
        case .int(let i): return NSNumber(value: i)
        case .double(let d): return NSNumber(value: d)
        case .string(let s): return s
        case .array(let elements): return elements.map(\.foundationObject)
        case .object(let keys, let values):
            var object: [String: Any] = [:]
            object.reserveCapacity(keys.count)
            for (key, value) in zip(keys, values) { object[key] = value.foundationObject }
            return object
        }
    }
}

extension JSONParser {
    /// `parse(data).foundationObject`, or nil when `data` is not JSON: the drop-in for
    /// `try? JSONSerialization.jsonObject(with:)` that keeps strings byte for byte.
    public static func foundationObject(from data: Data) -> Any? {
        (try? parse(data))?.foundationObject
    }
}
