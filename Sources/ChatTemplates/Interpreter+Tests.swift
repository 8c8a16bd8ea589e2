/// Jinja's built-in tests (`x is defined`, `x is string`, …), following Python's type model.
extension Interpreter {
    private static func isCased(_ s: String, upper: Bool) -> Bool {
        var sawCased = false
        for c in s.unicodeScalars {
            if c.properties.isUppercase { if !upper { return false }; sawCased = true }
            else if c.properties.isLowercase { if upper { return false }; sawCased = true }
        }
        return sawCased
    }

    func applyTest(_ name: String, _ value: RuntimeValue, _ a: ArgumentList) throws -> Bool {
        func argument() throws -> RuntimeValue {
            guard let v = a.positional.first ?? a.keyword.first?.1 else {
                throw ChatTemplateError(kind: .type, message: "test '\(name)' needs an argument")
            }
            return v
        }
        switch name {
        case "defined": return !value.isUndefined
        case "undefined": return value.isUndefined
        case "none": if case .none = value { return true }; return false
        case "boolean": if case .bool = value { return true }; return false
        case "true": if case .bool(true) = value { return true }; return false
        case "false": if case .bool(false) = value { return true }; return false
        case "integer": if case .int = value { return true }; return false
        case "float": if case .double = value { return true }; return false
        case "number": return value.number != nil
        case "string": if case .string = value { return true }; return false
        case "mapping": if case .object = value { return true }; return false
        case "iterable":
            switch value {
            case .array, .tuple, .object, .string, .undefined: return true
            default: return false
            }
        case "sequence":
            switch value {
            case .array, .tuple, .object, .string: return true
            default: return false
            }
        case "callable": if case .callable = value { return true }; return false
        case "eq", "equalto", "==": return value.pyEquals(try argument())
        case "ne", "!=": return !value.pyEquals(try argument())
        case "lt", "lessthan", "<": return try compare("<", value, try argument())
        case "le", "<=": return try compare("<=", value, try argument())
        case "gt", "greaterthan", ">": return try compare(">", value, try argument())
        case "ge", ">=": return try compare(">=", value, try argument())
        case "in": return try contains(try argument(), value)
        case "divisibleby":
            guard case .int(let n)? = try argument().number, n != 0, case .int(let v)? = value.number else {
                throw ChatTemplateError(kind: .type, message: "divisibleby expects integers")
            }
            return v % n == 0
        case "odd", "even":
            guard case .int(let v)? = value.number else { throw ChatTemplateError(kind: .type, message: "\(name) expects an integer") }
            return (v % 2 != 0) == (name == "odd")
        case "lower": return Interpreter.isCased(PythonFormatting.str(value), upper: false)
        case "upper": return Interpreter.isCased(PythonFormatting.str(value), upper: true)
        case "sameas":
            let other = try argument()
            switch (value, other) {
            case (.namespace(let x), .namespace(let y)): return x === y
            case (.none, .none), (.undefined, .undefined): return true
            case (.bool(let x), .bool(let y)): return x == y
            case (.array, _), (.tuple, _), (.object, _), (.callable, _), (.namespace, _): return false
            default:
                if case .bool = other { return false }
                return value.pyEquals(other) && value.typeName == other.typeName
            }
        case "escaped": return false
        case "filter":
            if case .string(let s) = value { return Builtins.filters.contains(s) }
            return false
        case "test":
            if case .string(let s) = value { return Builtins.tests.contains(s) }
            return false
        default:
            throw ChatTemplateError(kind: .syntax, message: "unknown test '\(name)'")
        }
    }
}
