extension JSONValue {
    /// This object with `key` set to `value`: replaced where it is (every
    /// occurrence of a repeated key), appended otherwise. Not an object: unchanged.
    public func setting(_ key: String, to value: JSONValue) -> JSONValue {
        guard case .object(var keys, var values) = self else { return self }
        let at = keys.indices.filter { keys[$0] == key }
        if at.isEmpty {
            keys.append(key)
            values.append(value)
        } else {
            for i in at { values[i] = value }
        }
        return .object(keys: keys, values: values)
    }

    /// Compact JSON text (no spaces), keys in their order, strings as UTF-8
    /// with only what JSON requires escaped.
    public var compactText: String {
        var out = ""
        append(to: &out)
        return out
    }

    private func append(to out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d): out += d.isFinite ? (d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) + ".0" : String(d)) : "null"
        case .string(let s): Self.appendQuoted(s, to: &out)
        case .array(let elements):
            out += "["
            for (i, e) in elements.enumerated() {
                if i > 0 { out += "," }
                e.append(to: &out)
            }
            out += "]"
        case .object(let keys, let values):
            out += "{"
            for (i, (k, v)) in zip(keys, values).enumerated() {
                if i > 0 { out += "," }
                Self.appendQuoted(k, to: &out)
                out += ":"
                v.append(to: &out)
            }
            out += "}"
        }
    }

    /// `s` as a JSON string literal.
    public static func quoted(_ s: String) -> String {
        var out = ""
        appendQuoted(s, to: &out)
        return out
    }

    private static func appendQuoted(_ s: String, to out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}
