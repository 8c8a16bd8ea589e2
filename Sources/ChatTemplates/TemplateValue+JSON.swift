import ByteExactJSON
import Foundation

extension TemplateValue {
    /// Parses JSON text, keeping object keys in document order (unlike `JSONSerialization`).
    ///
    /// Integers that fit in `Int` and carry no fraction or exponent become `.int`, as Python's
    /// `json.loads` would make them `int`; everything else numeric becomes `.double`.
    public init(jsonString: String) throws {
        try self.init(jsonData: Data(jsonString.utf8))
    }

    /// Parses JSON data (UTF-8), keeping object keys in document order.
    public init(jsonData: Data) throws {
        do {
            self.init(json: try JSONParser.parse(jsonData))
        } catch {
            throw ChatTemplateError(kind: .invalidInput, message: "invalid JSON: \(error.description)")
        }
    }

    /// A parsed JSON document, object keys in document order.
    public init(json: JSONValue) {
        switch json {
        case .null: self = .null
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .double(let d): self = .double(d)
        case .string(let s): self = .string(s)
        case .array(let elements): self = .array(elements.map(TemplateValue.init(json:)))
        case .object(let keys, let values):
            var dict = OrderedDict<TemplateValue>()
            for (key, value) in zip(keys, values) { dict[key] = TemplateValue(json: value) }
            self = .object(dict)
        }
    }

    /// Converts a value produced by `JSONSerialization` (or built from Foundation types).
    ///
    /// `NSDictionary` has no order, so keys are sorted to stay deterministic; use
    /// `init(jsonString:)` when the order matters (tool schemas serialised with `tojson`).
    public init(jsonObject: Any) throws {
        switch jsonObject {
        case is NSNull:
            self = .null
        case let s as String:
            self = .string(s)
        case let n as NSNumber:
            self = TemplateValue.fromNumber(n)
        case let a as [Any]:
            self = .array(try a.map { try TemplateValue(jsonObject: $0) })
        case let d as [String: Any]:
            var dict = OrderedDict<TemplateValue>()
            for key in d.keys.sorted() { dict[key] = try TemplateValue(jsonObject: d[key]!) }
            self = .object(dict)
        case let v as TemplateValue:
            self = v
        default:
            throw ChatTemplateError(kind: .invalidInput, message: "cannot convert \(type(of: jsonObject)) to a template value")
        }
    }

    private static func fromNumber(_ n: NSNumber) -> TemplateValue {
        if let bool = JSONScalar.bool(n) { return .bool(bool) }
        let code = String(cString: n.objCType)
        if code == "d" || code == "f" { return .double(n.doubleValue) }
        return .int(Int(n.int64Value))
    }
}
