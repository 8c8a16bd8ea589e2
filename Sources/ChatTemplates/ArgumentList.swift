/// Evaluated call arguments, with Python-style lookup by position or keyword.
struct ArgumentList {
    var positional: [RuntimeValue]
    var keyword: [(String, RuntimeValue)]
    /// What is being called, for error messages.
    var callee: String

    /// The argument at `index` if passed positionally, else the keyword argument `name`.
    func value(_ index: Int, _ name: String) -> RuntimeValue? {
        if index < positional.count { return positional[index] }
        return keyword.first { $0.0 == name }?.1
    }

    /// Rejects arguments beyond `names` (by position or by keyword), as Python would.
    func check(allowed names: [String]) throws {
        if positional.count > names.count {
            throw ChatTemplateError(kind: .type, message: "\(callee)() takes at most \(names.count) argument(s) (\(positional.count) given)")
        }
        for (k, _) in keyword where !names.contains(k) {
            throw ChatTemplateError(kind: .type, message: "\(callee)() got an unexpected keyword argument '\(k)'")
        }
    }

    func string(_ index: Int, _ name: String) throws -> String? {
        guard let v = value(index, name) else { return nil }
        switch v {
        case .string(let s): return s
        case .none: return nil
        default: throw ChatTemplateError(kind: .type, message: "\(callee)(): argument '\(name)' must be a string, not \(v.typeName)")
        }
    }

    func int(_ index: Int, _ name: String) throws -> Int? {
        guard let v = value(index, name) else { return nil }
        switch v {
        case .int(let i): return i
        case .bool(let b): return b ? 1 : 0
        case .none: return nil
        default: throw ChatTemplateError(kind: .type, message: "\(callee)(): argument '\(name)' must be an integer, not \(v.typeName)")
        }
    }

    func bool(_ index: Int, _ name: String) -> Bool? {
        value(index, name).map { $0.isTruthy }
    }
}
