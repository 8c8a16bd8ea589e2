import Foundation

extension TemplateValue {
    /// Parses JSON text, keeping object keys in document order (unlike `JSONSerialization`).
    ///
    /// Integers that fit in `Int` and carry no fraction or exponent become `.int`, as Python's
    /// `json.loads` would make them `int`; everything else numeric becomes `.double`.
    public init(jsonString: String) throws {
        var parser = JSONTextParser(Array(jsonString.utf8))
        self = try parser.parseDocument()
    }

    /// Parses JSON data (UTF-8), keeping object keys in document order.
    public init(jsonData: Data) throws {
        var parser = JSONTextParser(Array(jsonData))
        self = try parser.parseDocument()
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
        // Booleans arrive as NSNumber too; their Objective-C type code is "c" (char).
        let code = String(cString: n.objCType)
        if code == "c" || code == "B" { return .bool(n.boolValue) }
        if code == "d" || code == "f" { return .double(n.doubleValue) }
        return .int(Int(n.int64Value))
    }
}
