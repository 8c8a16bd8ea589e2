/// A parsed JSON document.
///
/// Objects keep their members as parallel ordered key/value lists rather than a `[String: …]`
/// dictionary: Swift `String` equality is canonical-equivalence based, so a dictionary
/// would silently merge vocabulary entries such as "é" (U+00E9) and "e\u{301}", which a
/// tokenizer must keep apart.
public enum JSONValue: Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object(keys: [String], values: [JSONValue])

    /// The member named `key` of an object (first occurrence), or nil.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let keys, let values) = self else { return nil }
        // Field names are ASCII, so comparing UTF-8 bytes is exact and cheap.
        for (i, k) in keys.enumerated() where k.utf8.elementsEqual(key.utf8) {
            return values[i]
        }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var intValue: Int? {
        switch self {
        case .int(let i): return i
        case .double(let d) where d == d.rounded() && abs(d) < 9e15: return Int(d)
        default: return nil
        }
    }

    public var doubleValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// An object's members in document order.
    public var objectMembers: (keys: [String], values: [JSONValue])? {
        if case .object(let keys, let values) = self { return (keys, values) }
        return nil
    }
}
