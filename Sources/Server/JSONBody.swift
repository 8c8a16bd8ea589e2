import Foundation
import ByteExactJSON

/// Typed reads from a client's JSON object. Every wrong type is a 400 that
/// names the field and says what was expected.
struct JSONBody {
    let fields: [String: Any]
    /// Prefix for field names in messages ("sampling_params.").
    let path: String
    /// The same object as parsed, keys in the order sent (a JSON schema's
    /// properties keep theirs); nil where the body was built from `fields`.
    let ordered: JSONValue?

    init(fields: [String: Any], path: String = "", ordered: JSONValue? = nil) {
        self.fields = fields
        self.path = path
        self.ordered = ordered
    }

    /// Parses a request body; malformed JSON or a non-object is a 400.
    init(data: Data) throws(APIError) {
        try self.init(document: try RequestDocument.parse(data))
    }

    /// A parsed request body; a non-object is a 400.
    init(document: JSONValue) throws(APIError) {
        guard let object = document.foundationObject as? [String: Any] else { throw .invalid("The request body must be a JSON object.") }
        self.init(fields: object, ordered: document)
    }

    /// A field not in `allowed` is a 400 that names it: a misspelled or
    /// unknown option is never silently dropped.
    func rejectUnknown(allowed: Set<String>) throws(APIError) {
        if let unknown = fields.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw .invalid("'\(path)\(unknown)' is not a field this endpoint knows.", param: path + unknown)
        }
    }

    func has(_ key: String) -> Bool { fields[key] != nil && !(fields[key] is NSNull) }

    private func raw(_ key: String) -> Any? {
        guard let v = fields[key], !(v is NSNull) else { return nil }
        return v
    }

    private func fail(_ key: String, _ expected: String) -> APIError {
        .invalid("'\(path)\(key)' must be \(expected).", param: path + key)
    }

    static func isBool(_ v: Any) -> Bool { JSONScalar.isBool(v) }

    static func integer(_ v: Any) -> Int? { JSONScalar.integer(v) }

    func string(_ key: String) throws(APIError) -> String? {
        guard let v = raw(key) else { return nil }
        guard let s = v as? String else { throw fail(key, "a string") }
        return s
    }

    func bool(_ key: String) throws(APIError) -> Bool? {
        guard let v = raw(key) else { return nil }
        guard let b = JSONScalar.bool(v) else { throw fail(key, "true or false") }
        return b
    }

    /// An integer field, refused unless it lies in `range`: every count, id
    /// and offset a client sends is bounded where it is parsed, so no later
    /// arithmetic on it can overflow.
    func int(_ key: String, in range: ClosedRange<Int>) throws(APIError) -> Int? {
        guard let v = raw(key) else { return nil }
        return try Self.bounded(v, in: range, or: fail(key, "an integer in \(Self.describe(range))"))
    }

    /// `value` as an integer in `range`, or `error`.
    static func bounded(_ value: Any, in range: ClosedRange<Int>, or error: APIError) throws(APIError) -> Int {
        guard let i = integer(value), range.contains(i) else { throw error }
        return i
    }

    /// "[0, 2147483647]" — what error messages quote.
    static func describe(_ range: ClosedRange<Int>) -> String { "[\(range.lowerBound), \(range.upperBound)]" }

    func number(_ key: String) throws(APIError) -> Double? {
        guard let v = raw(key) else { return nil }
        guard let n = v as? NSNumber, !Self.isBool(v), n.doubleValue.isFinite else { throw fail(key, "a number") }
        return n.doubleValue
    }

    func object(_ key: String) throws(APIError) -> JSONBody? {
        guard let v = raw(key) else { return nil }
        guard let o = v as? [String: Any] else { throw fail(key, "an object") }
        return JSONBody(fields: o, path: path + key + ".", ordered: ordered?[key])
    }

    func array(_ key: String) throws(APIError) -> [Any]? {
        guard let v = raw(key) else { return nil }
        guard let a = v as? [Any] else { throw fail(key, "an array") }
        return a
    }

    /// A string or a list of strings (OpenAI `stop`).
    func strings(_ key: String) throws(APIError) -> [String]? {
        guard let v = raw(key) else { return nil }
        if let s = v as? String { return [s] }
        guard let a = v as? [Any], let list = a as? [String] else { throw fail(key, "a string or an array of strings") }
        return list
    }

    func integers(_ key: String, in range: ClosedRange<Int>) throws(APIError) -> [Int]? {
        guard let a = try array(key) else { return nil }
        let error = fail(key, "an array of integers in \(Self.describe(range))")
        var out: [Int] = []
        for item in a { out.append(try Self.bounded(item, in: range, or: error)) }
        return out
    }
}

/// A request body parsed byte-exact, unlike JSONSerialization (a prompt
/// reaches the tokenizer as sent), with the 400 instances and routers alike
/// answer for an empty or malformed one.
public enum RequestDocument {
    public static func parse(_ data: Data) throws(APIError) -> JSONValue {
        guard !data.isEmpty else { throw .invalid("The request body is empty; expected a JSON object.") }
        do {
            return try JSONParser.parse(data)
        } catch {
            throw .invalid("The request body is not valid JSON: \(error.description).")
        }
    }
}
