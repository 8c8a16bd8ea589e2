/// A JSON-like value passed into a chat template (messages, tools, extra variables).
///
/// Objects keep key order because templates serialise tools and arguments with `tojson`, and the
/// model was trained on the order Python produced.
public enum TemplateValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([TemplateValue])
    case object(OrderedDict<TemplateValue>)

    /// Builds an object from ordered pairs.
    public static func object(_ pairs: [(String, TemplateValue)]) -> TemplateValue {
        .object(OrderedDict(pairs))
    }

    /// The string payload, if this is a string.
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// Member lookup for objects; `nil` for missing keys and non-objects.
    public subscript(key: String) -> TemplateValue? {
        if case .object(let dict) = self { return dict[key] }
        return nil
    }
}

extension TemplateValue: ExpressibleByNilLiteral {
    public init(nilLiteral: ()) { self = .null }
}

extension TemplateValue: ExpressibleByBooleanLiteral {
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}

extension TemplateValue: ExpressibleByIntegerLiteral {
    public init(integerLiteral value: Int) { self = .int(value) }
}

extension TemplateValue: ExpressibleByFloatLiteral {
    public init(floatLiteral value: Double) { self = .double(value) }
}

extension TemplateValue: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
}

extension TemplateValue: ExpressibleByArrayLiteral {
    public init(arrayLiteral elements: TemplateValue...) { self = .array(elements) }
}

extension TemplateValue: ExpressibleByDictionaryLiteral {
    /// Dictionary literals keep their written order.
    public init(dictionaryLiteral elements: (String, TemplateValue)...) {
        self = .object(OrderedDict(elements))
    }
}
