/// Python methods on strings, dicts and lists that templates call (`content.split('</think>')`,
/// `message.get('name')`). Mutating methods are refused, as in Hugging Face's immutable sandbox.
extension Interpreter {
    func callMethod(_ receiver: RuntimeValue, _ name: String, _ a: ArgumentList) throws -> RuntimeValue {
        switch receiver {
        case .string(let s): return try stringMethod(s, name, a)
        case .object(let dict):
            switch name {
            case "items":
                try a.check(allowed: [])
                return .array(dict.pairs.map { .tuple([.string($0.key), $0.value]) })
            case "keys":
                try a.check(allowed: [])
                return .array(dict.keys.map { .string($0) })
            case "values":
                try a.check(allowed: [])
                return .array(dict.values)
            case "get":
                try a.check(allowed: ["key", "default"])
                guard let key = a.value(0, "key") else { throw ChatTemplateError(kind: .type, message: "get expected at least 1 argument") }
                if case .string(let k) = key, let v = dict[k] { return v }
                return a.value(1, "default") ?? .none
            case "copy":
                return receiver
            default: break
            }
        case .array(let items), .tuple(let items):
            switch name {
            case "count":
                let x = a.value(0, "value") ?? .none
                return .int(items.filter { $0.pyEquals(x) }.count)
            case "index":
                let x = a.value(0, "value") ?? .none
                guard let i = items.firstIndex(where: { $0.pyEquals(x) }) else {
                    throw ChatTemplateError(kind: .type, message: "\(PythonFormatting.repr(x)) is not in list")
                }
                return .int(i)
            case "copy":
                return receiver
            default: break
            }
        default: break
        }
        throw ChatTemplateError(kind: .type, message: "access to '\(name)' of '\(receiver.typeName)' object is not allowed in a chat template (values are immutable)")
    }

    private func stringMethod(_ s: String, _ name: String, _ a: ArgumentList) throws -> RuntimeValue {
        func prefixes(_ v: RuntimeValue?) throws -> [String] {
            switch v {
            case .string(let p)?: return [p]
            case .array(let items)?, .tuple(let items)?:
                return try items.map {
                    guard case .string(let p) = $0 else { throw ChatTemplateError(kind: .type, message: "\(name) tuple items must be strings") }
                    return p
                }
            default: throw ChatTemplateError(kind: .type, message: "\(name) first arg must be str or a tuple of str")
            }
        }
        switch name {
        case "strip", "lstrip", "rstrip":
            try a.check(allowed: ["chars"])
            return .string(StringOps.strip(s, chars: try a.string(0, "chars"), leading: name != "rstrip", trailing: name != "lstrip"))
        case "split":
            try a.check(allowed: ["sep", "maxsplit"])
            return .array(try StringOps.split(s, separator: try a.string(0, "sep"), maxSplit: try a.int(1, "maxsplit") ?? -1).map { .string($0) })
        case "rsplit":
            try a.check(allowed: ["sep", "maxsplit"])
            let maxSplit = try a.int(1, "maxsplit") ?? -1
            guard let sep = try a.string(0, "sep") else {
                if maxSplit < 0 { return .array(try StringOps.split(s, separator: nil).map { .string($0) }) }
                throw ChatTemplateError(kind: .type, message: "rsplit without a separator and with maxsplit is not supported")
            }
            return .array(try StringOps.rsplit(s, separator: sep, maxSplit: maxSplit).map { .string($0) })
        case "startswith", "endswith":
            let options = try prefixes(a.value(0, "prefix"))
            var text = s
            if a.positional.count > 1 {
                let scalars = Array(s.unicodeScalars)
                let indices = try Interpreter.sliceIndices(count: scalars.count, start: try a.int(1, "start"), stop: try a.int(2, "end"), step: 1)
                text = StringOps.string(indices.map { scalars[$0] })
            }
            return .bool(options.contains { name == "startswith" ? StringOps.hasPrefix(text, $0) : StringOps.hasSuffix(text, $0) })
        case "upper": return .string(StringOps.upper(s))
        case "lower": return .string(StringOps.lower(s))
        case "title": return .string(StringOps.pythonTitle(s))
        case "capitalize": return .string(StringOps.capitalize(s))
        case "swapcase":
            return .string(s.unicodeScalars.map { c -> String in
                c.properties.isUppercase ? String(c).lowercased() : (c.properties.isLowercase ? String(c).uppercased() : String(c))
            }.joined())
        case "replace":
            guard let old = try a.string(0, "old"), let new = try a.string(1, "new") else {
                throw ChatTemplateError(kind: .type, message: "replace expected 2 string arguments")
            }
            return .string(StringOps.replace(s, old, new, count: try a.int(2, "count") ?? -1))
        case "find":
            guard let sub = try a.string(0, "sub") else { throw ChatTemplateError(kind: .type, message: "find expected a string") }
            return .int(StringOps.find(sub, in: s) ?? -1)
        case "rfind":
            guard let sub = try a.string(0, "sub") else { throw ChatTemplateError(kind: .type, message: "rfind expected a string") }
            return .int(StringOps.rfind(sub, in: s) ?? -1)
        case "count":
            guard let sub = try a.string(0, "sub") else { throw ChatTemplateError(kind: .type, message: "count expected a string") }
            return .int(StringOps.count(sub, in: s))
        case "join":
            let items = try iterate(a.value(0, "iterable") ?? .array([]))
            return .string(try items.map { item -> String in
                guard case .string(let p) = item else {
                    throw ChatTemplateError(kind: .type, message: "sequence item: expected str instance, \(item.typeName) found")
                }
                return p
            }.joined(separator: s))
        case "splitlines":
            return .array(StringOps.splitLines(s).map { .string($0) })
        case "removeprefix":
            let p = try a.string(0, "prefix") ?? ""
            return .string(StringOps.hasPrefix(s, p) ? StringOps.string(s.unicodeScalars.dropFirst(p.unicodeScalars.count)) : s)
        case "removesuffix":
            let p = try a.string(0, "suffix") ?? ""
            return .string(!p.isEmpty && StringOps.hasSuffix(s, p) ? StringOps.string(s.unicodeScalars.dropLast(p.unicodeScalars.count)) : s)
        case "isdigit", "isnumeric":
            return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.numericType != nil })
        case "isalpha":
            return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.isAlphabetic })
        case "isalnum":
            return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || $0.properties.numericType != nil })
        case "isspace":
            return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy(Lexer.isWhitespace))
        case "islower", "isupper":
            return .bool(try applyTest(name == "islower" ? "lower" : "upper", .string(s), ArgumentList(positional: [], keyword: [], callee: name)))
        case "zfill", "center", "ljust", "rjust":
            let width = try a.int(0, "width") ?? 0
            let fill = try a.string(1, "fillchar") ?? (name == "zfill" ? "0" : " ")
            let padding = max(0, width - StringOps.length(s))
            switch name {
            case "ljust": return .string(s + String(repeating: fill, count: padding))
            case "rjust": return .string(String(repeating: fill, count: padding) + s)
            case "center":
                let left = padding / 2 + (padding & width & 1)
                return .string(String(repeating: fill, count: left) + s + String(repeating: fill, count: padding - left))
            default:
                if let first = s.unicodeScalars.first, first == "-" || first == "+" {
                    return .string(String(first) + String(repeating: "0", count: padding) + StringOps.string(s.unicodeScalars.dropFirst()))
                }
                return .string(String(repeating: "0", count: padding) + s)
            }
        case "format":
            return .string(try format(s, a))
        default:
            throw ChatTemplateError(kind: .type, message: "string method '\(name)' is not supported")
        }
    }

    /// `str.format` for plain replacement fields (`{}`, `{0}`, `{name}`); format specs are refused
    /// rather than rendered differently from Python.
    private func format(_ s: String, _ a: ArgumentList) throws -> String {
        var out = ""
        var auto = 0
        let scalars = Array(s.unicodeScalars)
        var i = 0
        while i < scalars.count {
            let c = scalars[i]
            if c == "{" {
                if i + 1 < scalars.count, scalars[i + 1] == "{" { out += "{"; i += 2; continue }
                guard let close = scalars[i...].firstIndex(of: "}") else { throw ChatTemplateError(kind: .type, message: "Single '{' encountered in format string") }
                let field = StringOps.string(scalars[(i + 1)..<close])
                if field.contains(":") || field.contains("!") || field.contains(".") || field.contains("[") {
                    throw ChatTemplateError(kind: .type, message: "format specs in str.format are not supported")
                }
                let value: RuntimeValue?
                if field.isEmpty {
                    value = auto < a.positional.count ? a.positional[auto] : nil
                    auto += 1
                } else if let n = Int(field) {
                    value = n < a.positional.count ? a.positional[n] : nil
                } else {
                    value = a.keyword.first { $0.0 == field }?.1
                }
                guard let value else { throw ChatTemplateError(kind: .type, message: "missing argument for format field '{\(field)}'") }
                out += PythonFormatting.str(value)
                i = close + 1
            } else if c == "}" {
                if i + 1 < scalars.count, scalars[i + 1] == "}" { out += "}"; i += 2; continue }
                throw ChatTemplateError(kind: .type, message: "Single '}' encountered in format string")
            } else {
                out.unicodeScalars.append(c)
                i += 1
            }
        }
        return out
    }
}
