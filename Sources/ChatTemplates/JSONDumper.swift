/// Python's `json.dumps` as Hugging Face's `tojson` calls it (`ensure_ascii=False` by default, no
/// HTML escaping, key order preserved). Byte-exact output matters: tool schemas are fed to the
/// model verbatim.
struct JSONDumper {
    var ensureASCII = false
    /// `nil` means single-line output.
    var indent: String? = nil
    var itemSeparator = ", "
    var keySeparator = ": "
    var sortKeys = false
    private var depth = 0

    init(ensureASCII: Bool = false, indent: String? = nil, separators: (String, String)? = nil, sortKeys: Bool = false) {
        self.ensureASCII = ensureASCII
        self.indent = indent
        self.sortKeys = sortKeys
        if let separators {
            itemSeparator = separators.0
            keySeparator = separators.1
        } else if indent != nil {
            // With an indent, Python drops the trailing space after commas (it would end lines).
            itemSeparator = ","
        }
    }

    mutating func dump(_ value: RuntimeValue) throws -> String {
        var out = ""
        try write(value, into: &out)
        return out
    }

    private mutating func write(_ value: RuntimeValue, into out: inout String) throws {
        switch value {
        case .none: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d):
            if d.isNaN { out += "NaN" } else if d.isInfinite { out += d < 0 ? "-Infinity" : "Infinity" } else {
                out += PythonFormatting.floatRepr(d)
            }
        case .string(let s): writeString(s, into: &out)
        case .array(let items), .tuple(let items):
            if items.isEmpty { out += "[]"; return }
            try nest()
            defer { depth -= 1 }
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += itemSeparator }
                newline(&out)
                try write(item, into: &out)
            }
            depth -= 1
            newline(&out)
            depth += 1
            out += "]"
        case .object(let dict):
            if dict.isEmpty { out += "{}"; return }
            try nest()
            defer { depth -= 1 }
            out += "{"
            let keys = sortKeys ? dict.keys.sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) } : dict.keys
            for (i, key) in keys.enumerated() {
                if i > 0 { out += itemSeparator }
                newline(&out)
                writeString(key, into: &out)
                out += keySeparator
                try write(dict[key]!, into: &out)
            }
            depth -= 1
            newline(&out)
            depth += 1
            out += "}"
        case .undefined, .namespace, .callable:
            throw ChatTemplateError(kind: .type, message: "Object of type \(value.typeName) is not JSON serializable")
        }
    }

    private mutating func nest() throws {
        depth += 1
        if depth > 512 { throw ChatTemplateError(kind: .limit, message: "tojson: value nested too deeply") }
    }

    private func newline(_ out: inout String) {
        guard let indent else { return }
        out += "\n"
        for _ in 0..<depth { out += indent }
    }

    private func writeString(_ s: String, into out: inout String) {
        var buf = String.UnicodeScalarView()
        buf.append("\"")
        for c in s.unicodeScalars {
            switch c {
            case "\"": buf.append(contentsOf: "\\\"".unicodeScalars)
            case "\\": buf.append(contentsOf: "\\\\".unicodeScalars)
            case "\n": buf.append(contentsOf: "\\n".unicodeScalars)
            case "\r": buf.append(contentsOf: "\\r".unicodeScalars)
            case "\t": buf.append(contentsOf: "\\t".unicodeScalars)
            case "\u{08}": buf.append(contentsOf: "\\b".unicodeScalars)
            case "\u{0C}": buf.append(contentsOf: "\\f".unicodeScalars)
            default:
                if c.value < 0x20 {
                    buf.append(contentsOf: ("\\u" + PythonFormatting.hex(c.value, width: 4)).unicodeScalars)
                } else if ensureASCII && c.value > 0x7E {
                    if c.value > 0xFFFF {
                        let v = c.value - 0x10000
                        buf.append(contentsOf: ("\\u" + PythonFormatting.hex(0xD800 + (v >> 10), width: 4)).unicodeScalars)
                        buf.append(contentsOf: ("\\u" + PythonFormatting.hex(0xDC00 + (v & 0x3FF), width: 4)).unicodeScalars)
                    } else {
                        buf.append(contentsOf: ("\\u" + PythonFormatting.hex(c.value, width: 4)).unicodeScalars)
                    }
                } else {
                    buf.append(c)
                }
            }
        }
        buf.append("\"")
        out += String(buf)
    }
}
