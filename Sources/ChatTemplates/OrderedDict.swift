/// A string-keyed dictionary that remembers insertion order.
///
/// Chat templates are rendered by Python, where dicts keep insertion order; `tojson`, `items()` and
/// `for k in d` all expose that order, so the renderer must keep it too to produce identical prompts.
public struct OrderedDict<Value> {
    /// Keys in insertion order.
    public private(set) var keys: [String] = []
    private var storage: [String: Value] = [:]

    /// An empty dictionary.
    public init() {}

    /// Builds a dictionary from pairs in order; a repeated key keeps its first position and last value (as Python does).
    public init(_ pairs: [(String, Value)]) {
        for (key, value) in pairs { self[key] = value }
    }

    /// Number of entries.
    public var count: Int { keys.count }

    /// Whether there are no entries.
    public var isEmpty: Bool { keys.isEmpty }

    /// Values in key order.
    public var values: [Value] { keys.map { storage[$0]! } }

    /// Entries in key order.
    public var pairs: [(key: String, value: Value)] { keys.map { ($0, storage[$0]!) } }

    /// Reads or writes a value; writing `nil` removes the key.
    public subscript(key: String) -> Value? {
        get { storage[key] }
        set {
            if let newValue {
                if storage.updateValue(newValue, forKey: key) == nil { keys.append(key) }
            } else if storage.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    /// Whether `key` is present.
    public func contains(_ key: String) -> Bool { storage[key] != nil }

    /// The same keys with transformed values.
    public func mapValues<T>(_ transform: (Value) throws -> T) rethrows -> OrderedDict<T> {
        var result = OrderedDict<T>()
        for key in keys { result[key] = try transform(storage[key]!) }
        return result
    }
}

extension OrderedDict: Sendable where Value: Sendable {}

extension OrderedDict: Equatable where Value: Equatable {
    /// Python dict equality ignores order, so this does too.
    public static func == (lhs: OrderedDict, rhs: OrderedDict) -> Bool {
        lhs.storage == rhs.storage
    }
}

extension OrderedDict: ExpressibleByDictionaryLiteral {
    /// Builds a dictionary in literal order.
    public init(dictionaryLiteral elements: (String, Value)...) {
        self.init(elements)
    }
}
