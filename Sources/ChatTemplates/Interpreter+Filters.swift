import Foundation

/// Jinja's built-in filters (the subset chat templates use), with Hugging Face's `tojson` override.
extension Interpreter {
    func applyFilter(_ name: String, _ value: RuntimeValue, _ args: CallArguments, _ loc: SourceLocation) throws -> RuntimeValue {
        let arguments = try evaluateArguments(args, callee: name)
        return try locate(loc) { try filter(name, value, arguments) }
    }

    /// Python `len()`; Jinja's `Undefined` has length 0.
    func length(_ value: RuntimeValue) throws -> Int {
        switch value {
        case .string(let s): return StringOps.length(s)
        case .array(let a), .tuple(let a): return a.count
        case .object(let o): return o.count
        case .undefined: return 0
        default: throw ChatTemplateError(kind: .type, message: "object of type '\(value.typeName)' has no len()")
        }
    }

    /// Jinja's attribute getter for `map(attribute=)`, `selectattr`, `sort(attribute=)`…:
    /// dotted paths, integer parts index lists, item lookup before attribute lookup.
    func lookupPath(_ item: RuntimeValue, _ path: String) throws -> RuntimeValue {
        var value = item
        for part in path.split(separator: ".", omittingEmptySubsequences: false) {
            let key: RuntimeValue = Int(part).map { .int($0) } ?? .string(String(part))
            value = try getItem(value, key)
        }
        return value
    }

    private func htmlEscape(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&#34;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// Sort key honouring Jinja's default case-insensitivity for strings.
    private func sortKey(_ v: RuntimeValue, caseSensitive: Bool) -> RuntimeValue {
        if !caseSensitive, case .string(let s) = v { return .string(s.lowercased()) }
        return v
    }

    private func sorted(_ items: [RuntimeValue], by key: (RuntimeValue) throws -> RuntimeValue, reverse: Bool) throws -> [RuntimeValue] {
        let keyed = try items.map { (try key($0), $0) }
        var failure: Error?
        // Stable merge of (key, value) pairs; ordering can throw, so errors are captured and rethrown.
        let result = keyed.enumerated().sorted { lhs, rhs in
            do {
                let o = try ordering(lhs.element.0, rhs.element.0, "<") ?? 0
                if o == 0 { return lhs.offset < rhs.offset }
                return reverse ? o > 0 : o < 0
            } catch {
                failure = error
                return false
            }
        }
        if let failure { throw failure }
        return result.map { $0.element.1 }
    }

    func filter(_ name: String, _ value: RuntimeValue, _ a: ArgumentList) throws -> RuntimeValue {
        switch name {
        case "abs":
            guard let n = value.number else { throw ChatTemplateError(kind: .type, message: "bad operand type for abs(): '\(value.typeName)'") }
            switch n {
            case .int(let i):
                guard i != Int.min else { throw ChatTemplateError(kind: .limit, message: "integer overflow") }
                return .int(abs(i))
            case .double(let d): return .double(abs(d))
            }
        case "attr":
            let attribute = try a.string(0, "name") ?? ""
            if case .object = value, !Interpreter.dictMethods.contains(attribute) {
                return .undefined("'dict object' has no attribute '\(attribute)'")
            }
            return try getAttribute(value, attribute)
        case "capitalize":
            return .string(StringOps.capitalize(PythonFormatting.str(value)))
        case "count", "length":
            return .int(try length(value))
        case "d", "default":
            try a.check(allowed: ["default_value", "boolean"])
            let fallback = a.value(0, "default_value") ?? .string("")
            let boolean = a.bool(1, "boolean") ?? false
            if value.isUndefined || (boolean && !value.isTruthy) { return fallback }
            return value
        case "dictsort":
            guard case .object(let dict) = value else { throw ChatTemplateError(kind: .type, message: "dictsort filter expects a mapping") }
            let caseSensitive = a.bool(0, "case_sensitive") ?? false
            let byValue = (try a.string(1, "by") ?? "key") == "value"
            let reverse = a.bool(2, "reverse") ?? false
            let pairs: [RuntimeValue] = dict.pairs.map { .tuple([.string($0.key), $0.value]) }
            return .array(try sorted(pairs, by: { pair in
                guard let kv = pair.sequenceItems else { return pair }
                return self.sortKey(byValue ? kv[1] : kv[0], caseSensitive: caseSensitive)
            }, reverse: reverse))
        case "e", "escape", "forceescape":
            return .string(htmlEscape(PythonFormatting.str(value)))
        case "first":
            if case .undefined = value { return value }
            let items = try iterate(value)
            return items.first ?? .undefined("No first item, sequence was empty.")
        case "last":
            if case .undefined = value { return value }
            if case .object = value { throw ChatTemplateError(kind: .type, message: "'dict' object is not reversible") }
            let items = try iterate(value)
            return items.last ?? .undefined("No last item, sequence was empty.")
        case "float":
            let fallback = a.value(0, "default") ?? .double(0)
            switch value {
            case .int(let i): return .double(Double(i))
            case .bool(let b): return .double(b ? 1 : 0)
            case .double: return value
            case .string(let s):
                let t = StringOps.strip(s, chars: nil, leading: true, trailing: true).lowercased()
                if let d = Double(t) { return .double(d) }
                switch t {
                case "inf", "+inf", "infinity", "+infinity": return .double(.infinity)
                case "-inf", "-infinity": return .double(-.infinity)
                case "nan", "+nan", "-nan": return .double(.nan)
                default: return fallback
                }
            default: return fallback
            }
        case "indent":
            let widthValue = a.value(0, "width") ?? .int(4)
            let indentation: String
            if case .string(let s) = widthValue { indentation = s } else { indentation = String(repeating: " ", count: max(0, try a.int(0, "width") ?? 4)) }
            let first = a.bool(1, "first") ?? false
            let blank = a.bool(2, "blank") ?? false
            let lines = StringOps.splitLines(PythonFormatting.str(value) + "\n")
            var result: String
            if blank {
                result = lines.joined(separator: "\n" + indentation)
            } else {
                result = lines.first ?? ""
                if lines.count > 1 {
                    result += "\n" + lines.dropFirst().map { $0.isEmpty ? $0 : indentation + $0 }.joined(separator: "\n")
                }
            }
            return .string(first ? indentation + result : result)
        case "int":
            let fallback = a.value(0, "default") ?? .int(0)
            let base = try a.int(1, "base") ?? 10
            switch value {
            case .int: return value
            case .bool(let b): return .int(b ? 1 : 0)
            case .double(let d):
                guard d.isFinite, let i = Int(exactly: d.rounded(.towardZero)) else { return fallback }
                return .int(i)
            case .string(let s):
                let t = StringOps.strip(s, chars: nil, leading: true, trailing: true).replacingOccurrences(of: "_", with: "")
                if (2...36).contains(base), let i = Int(t, radix: base) { return .int(i) }
                if let d = Double(t), d.isFinite, let i = Int(exactly: d.rounded(.towardZero)) { return .int(i) }
                return fallback
            default: return fallback
            }
        case "items":
            switch value {
            case .undefined: return .array([])
            case .object(let dict): return .array(dict.pairs.map { .tuple([.string($0.key), $0.value]) })
            default: throw ChatTemplateError(kind: .type, message: "Can only get item pairs from a mapping.")
            }
        case "join":
            let separator = try a.string(0, "d") ?? ""
            var items = try iterate(value)
            if let attribute = try a.string(1, "attribute") { items = try items.map { try lookupPath($0, attribute) } }
            return .string(items.map(PythonFormatting.str).joined(separator: separator))
        case "list":
            return .array(try iterate(value))
        case "lower":
            return .string(StringOps.lower(PythonFormatting.str(value)))
        case "upper":
            return .string(StringOps.upper(PythonFormatting.str(value)))
        case "map":
            // Jinja skips falsy inputs (None included) here instead of failing to iterate them.
            let items = value.isTruthy ? try iterate(value) : []
            if let attribute = a.keyword.first(where: { $0.0 == "attribute" })?.1 {
                guard case .string(let path) = attribute else { throw ChatTemplateError(kind: .type, message: "map: attribute must be a string") }
                let fallback = a.keyword.first(where: { $0.0 == "default" })?.1
                return .array(try items.map { item in
                    let v = try lookupPath(item, path)
                    if v.isUndefined, let fallback { return fallback }
                    return v
                })
            }
            guard case .string(let filterName)? = a.positional.first else {
                throw ChatTemplateError(kind: .type, message: "map requires a filter name or attribute=")
            }
            guard Builtins.filters.contains(filterName) else { throw ChatTemplateError(kind: .syntax, message: "unknown filter '\(filterName)'") }
            let rest = ArgumentList(positional: Array(a.positional.dropFirst()), keyword: a.keyword, callee: filterName)
            return .array(try items.map { try filter(filterName, $0, rest) })
        case "max", "min":
            let caseSensitive = a.bool(0, "case_sensitive") ?? false
            let attribute = try a.string(1, "attribute")
            let items = try iterate(value)
            guard !items.isEmpty else { return .undefined("No aggregated item, sequence was empty.") }
            let ordered = try sorted(items, by: { item in
                self.sortKey(try attribute.map { try self.lookupPath(item, $0) } ?? item, caseSensitive: caseSensitive)
            }, reverse: false)
            return name == "min" ? ordered.first! : ordered.last!
        case "pprint":
            return .string(PythonFormatting.repr(value))
        case "select", "reject":
            // Jinja skips falsy inputs (None included) here instead of failing to iterate them.
            let items = value.isTruthy ? try iterate(value) : []
            let keep = name == "select"
            guard case .string(let testName)? = a.positional.first else {
                return .array(items.filter { $0.isTruthy == keep })
            }
            let rest = ArgumentList(positional: Array(a.positional.dropFirst()), keyword: a.keyword, callee: testName)
            return .array(try items.filter { try applyTest(testName, $0, rest) == keep })
        case "selectattr", "rejectattr":
            // Jinja skips falsy inputs (None included) here instead of failing to iterate them.
            let items = value.isTruthy ? try iterate(value) : []
            let keep = name == "selectattr"
            guard case .string(let path)? = a.positional.first else {
                throw ChatTemplateError(kind: .type, message: "\(name) requires an attribute name")
            }
            if a.positional.count < 2 {
                return .array(try items.filter { try lookupPath($0, path).isTruthy == keep })
            }
            guard case .string(let testName) = a.positional[1] else { throw ChatTemplateError(kind: .type, message: "\(name): test name must be a string") }
            let rest = ArgumentList(positional: Array(a.positional.dropFirst(2)), keyword: a.keyword, callee: testName)
            return .array(try items.filter { try applyTest(testName, try lookupPath($0, path), rest) == keep })
        case "replace":
            guard let old = try a.string(0, "old"), let new = try a.string(1, "new") else {
                throw ChatTemplateError(kind: .type, message: "replace requires old and new strings")
            }
            let count = try a.int(2, "count") ?? -1
            return .string(StringOps.replace(PythonFormatting.str(value), old, new, count: count))
        case "reverse":
            if case .string(let s) = value { return .string(StringOps.string(s.unicodeScalars.reversed())) }
            return .array(try iterate(value).reversed())
        case "round":
            let precision = try a.int(0, "precision") ?? 0
            let method = try a.string(1, "method") ?? "common"
            guard let n = value.number else { throw ChatTemplateError(kind: .type, message: "round filter expects a number") }
            let scale = pow(10.0, Double(precision))
            let x = n.asDouble * scale
            let rounded: Double
            switch method {
            case "ceil": rounded = x.rounded(.up)
            case "floor": rounded = x.rounded(.down)
            case "common": rounded = x.rounded(.toNearestOrEven)
            default: throw ChatTemplateError(kind: .type, message: "method must be common, ceil or floor")
            }
            return .double(rounded / scale)
        case "safe":
            return value
        case "sort":
            let reverse = a.bool(0, "reverse") ?? false
            let caseSensitive = a.bool(1, "case_sensitive") ?? false
            let attribute = try a.string(2, "attribute")
            return .array(try sorted(try iterate(value), by: { item in
                self.sortKey(try attribute.map { try self.lookupPath(item, $0) } ?? item, caseSensitive: caseSensitive)
            }, reverse: reverse))
        case "string":
            return .string(PythonFormatting.str(value))
        case "sum":
            let attribute = try a.string(0, "attribute")
            var total = a.value(1, "start") ?? .int(0)
            for item in try iterate(value) {
                total = try binaryOperation("+", total, try attribute.map { try lookupPath(item, $0) } ?? item)
            }
            return total
        case "title":
            return .string(StringOps.jinjaTitle(PythonFormatting.str(value)))
        case "tojson":
            try a.check(allowed: ["ensure_ascii", "indent", "separators", "sort_keys"])
            var indent: String? = nil
            switch a.value(1, "indent") {
            case .int(let n)?: indent = String(repeating: " ", count: max(0, n))
            case .string(let s)?: indent = s
            default: break
            }
            var separators: (String, String)? = nil
            if let seps = a.value(2, "separators")?.sequenceItems, seps.count == 2,
               case .string(let item) = seps[0], case .string(let key) = seps[1] {
                separators = (item, key)
            }
            var dumper = JSONDumper(ensureASCII: a.bool(0, "ensure_ascii") ?? false, indent: indent,
                                    separators: separators, sortKeys: a.bool(3, "sort_keys") ?? false)
            return .string(try dumper.dump(value))
        case "trim":
            return .string(StringOps.strip(PythonFormatting.str(value), chars: try a.string(0, "chars"), leading: true, trailing: true))
        case "unique":
            let caseSensitive = a.bool(0, "case_sensitive") ?? false
            let attribute = try a.string(1, "attribute")
            var seen: [RuntimeValue] = []
            var result: [RuntimeValue] = []
            for item in try iterate(value) {
                let key = sortKey(try attribute.map { try lookupPath(item, $0) } ?? item, caseSensitive: caseSensitive)
                if !seen.contains(where: { $0.pyEquals(key) }) {
                    seen.append(key)
                    result.append(item)
                }
            }
            return .array(result)
        case "wordcount":
            let words = PythonFormatting.str(value).unicodeScalars.split { !($0.properties.isAlphabetic || $0.properties.numericType != nil || $0 == "_") }
            return .int(words.count)
        default:
            throw ChatTemplateError(kind: .syntax, message: "unknown filter '\(name)'")
        }
    }
}
