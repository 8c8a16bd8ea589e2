import Foundation

/// Arithmetic and comparison with Python semantics (true division, floor division and modulo
/// rounding toward negative infinity, `bool` as `int`). Integer overflow, which Python avoids with
/// big integers, is reported as an error instead of trapping.
extension Interpreter {
    private static func overflow() -> ChatTemplateError {
        ChatTemplateError(kind: .limit, message: "integer overflow (values beyond 64 bits are not supported)")
    }

    private static func unsupported(_ op: String, _ l: RuntimeValue, _ r: RuntimeValue) -> ChatTemplateError {
        ChatTemplateError(kind: .type, message: "unsupported operand type(s) for \(op): '\(l.typeName)' and '\(r.typeName)'")
    }

    func unaryOperation(_ op: String, _ value: RuntimeValue) throws -> RuntimeValue {
        guard let n = value.number else {
            if value.isUndefined { throw Interpreter.undefinedError(value) }
            throw ChatTemplateError(kind: .type, message: "bad operand type for unary \(op): '\(value.typeName)'")
        }
        switch (op, n) {
        case ("-", .int(let i)):
            guard i != Int.min else { throw Interpreter.overflow() }
            return .int(-i)
        case ("-", .double(let d)): return .double(-d)
        case (_, .int(let i)): return .int(i)
        case (_, .double(let d)): return .double(d)
        }
    }

    func binaryOperation(_ op: String, _ l: RuntimeValue, _ r: RuntimeValue) throws -> RuntimeValue {
        if op == "~" {
            return .string(PythonFormatting.str(l) + PythonFormatting.str(r))
        }
        if l.isUndefined { throw Interpreter.undefinedError(l) }
        if r.isUndefined { throw Interpreter.undefinedError(r) }
        switch (op, l, r) {
        case ("+", .string(let a), .string(let b)):
            return .string(a + b)
        case ("+", .array(let a), .array(let b)):
            return .array(a + b)
        case ("+", .tuple(let a), .tuple(let b)):
            return .tuple(a + b)
        case ("*", .string(let s), _), ("*", _, .string(let s)):
            guard case .int(let n)? = (l.number != nil ? l.number : r.number), l.number == nil || r.number == nil else { break }
            guard n > 0 else { return .string("") }
            guard s.utf8.count.multipliedReportingOverflow(by: n).partialValue <= limits.maxOutputBytes,
                  !s.utf8.count.multipliedReportingOverflow(by: n).overflow else {
                throw ChatTemplateError(kind: .limit, message: "string repetition exceeds the output limit")
            }
            return .string(String(repeating: s, count: n))
        case ("*", .array(let a), _), ("*", _, .array(let a)):
            guard case .int(let n)? = (l.number != nil ? l.number : r.number) else { break }
            guard n > 0 else { return .array([]) }
            guard a.count.multipliedReportingOverflow(by: n).partialValue <= limits.maxLoopIterations,
                  !a.count.multipliedReportingOverflow(by: n).overflow else {
                throw ChatTemplateError(kind: .limit, message: "list repetition is too large")
            }
            return .array(Array([[RuntimeValue]](repeating: a, count: n).joined()))
        default:
            break
        }
        guard let a = l.number, let b = r.number else { throw Interpreter.unsupported(op, l, r) }
        switch (a, b) {
        case (.int(let x), .int(let y)):
            return try integerOperation(op, x, y)
        default:
            return try floatOperation(op, a.asDouble, b.asDouble)
        }
    }

    private func integerOperation(_ op: String, _ x: Int, _ y: Int) throws -> RuntimeValue {
        func checked(_ r: (partialValue: Int, overflow: Bool)) throws -> RuntimeValue {
            if r.overflow { throw Interpreter.overflow() }
            return .int(r.partialValue)
        }
        switch op {
        case "+": return try checked(x.addingReportingOverflow(y))
        case "-": return try checked(x.subtractingReportingOverflow(y))
        case "*": return try checked(x.multipliedReportingOverflow(by: y))
        case "/":
            guard y != 0 else { throw ChatTemplateError(kind: .type, message: "division by zero") }
            return .double(Double(x) / Double(y))
        case "//":
            guard y != 0 else { throw ChatTemplateError(kind: .type, message: "integer division or modulo by zero") }
            let q = x.dividedReportingOverflow(by: y)
            if q.overflow { throw Interpreter.overflow() }
            var quotient = q.partialValue
            if (x % y != 0) && ((x < 0) != (y < 0)) { quotient -= 1 }
            return .int(quotient)
        case "%":
            guard y != 0 else { throw ChatTemplateError(kind: .type, message: "integer division or modulo by zero") }
            if y == -1 { return .int(0) }
            var r = x % y
            if r != 0 && ((r < 0) != (y < 0)) { r += y }
            return .int(r)
        case "**":
            if y < 0 { return .double(pow(Double(x), Double(y))) }
            var result = 1, base = x, e = y
            while e > 0 {
                if e & 1 == 1 {
                    let m = result.multipliedReportingOverflow(by: base)
                    if m.overflow { throw Interpreter.overflow() }
                    result = m.partialValue
                }
                e >>= 1
                if e > 0 {
                    let m = base.multipliedReportingOverflow(by: base)
                    if m.overflow { throw Interpreter.overflow() }
                    base = m.partialValue
                }
            }
            return .int(result)
        default:
            throw ChatTemplateError(kind: .type, message: "unsupported operator \(op)")
        }
    }

    private func floatOperation(_ op: String, _ x: Double, _ y: Double) throws -> RuntimeValue {
        switch op {
        case "+": return .double(x + y)
        case "-": return .double(x - y)
        case "*": return .double(x * y)
        case "/":
            guard y != 0 else { throw ChatTemplateError(kind: .type, message: "float division by zero") }
            return .double(x / y)
        case "//":
            guard y != 0 else { throw ChatTemplateError(kind: .type, message: "float floor division by zero") }
            return .double((x / y).rounded(.down))
        case "%":
            guard y != 0 else { throw ChatTemplateError(kind: .type, message: "float modulo") }
            var r = fmod(x, y)
            if r != 0 && ((r < 0) != (y < 0)) { r += y }
            return .double(r)
        case "**":
            return .double(pow(x, y))
        default:
            throw ChatTemplateError(kind: .type, message: "unsupported operator \(op)")
        }
    }

    func compare(_ op: String, _ l: RuntimeValue, _ r: RuntimeValue) throws -> Bool {
        switch op {
        case "==": return l.pyEquals(r)
        case "!=": return !l.pyEquals(r)
        case "in": return try contains(r, l)
        case "notin": return try !contains(r, l)
        default:
            let order = try ordering(l, r, op)
            guard let order else { return false }
            switch op {
            case "<": return order < 0
            case "<=": return order <= 0
            case ">": return order > 0
            default: return order >= 0
            }
        }
    }

    /// Python ordering between numbers, strings (by code point) and lists; `nil` for NaN.
    func ordering(_ l: RuntimeValue, _ r: RuntimeValue, _ op: String) throws -> Int? {
        if let a = l.number, let b = r.number { return a.compare(b) }
        switch (l, r) {
        case (.string(let a), .string(let b)):
            if a.unicodeScalars.elementsEqual(b.unicodeScalars) { return 0 }
            return a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars) ? -1 : 1
        case (.array(let a), .array(let b)), (.tuple(let a), .tuple(let b)):
            for (x, y) in zip(a, b) where !x.pyEquals(y) {
                return try ordering(x, y, op)
            }
            return a.count == b.count ? 0 : (a.count < b.count ? -1 : 1)
        default:
            if l.isUndefined { throw Interpreter.undefinedError(l) }
            if r.isUndefined { throw Interpreter.undefinedError(r) }
            throw ChatTemplateError(kind: .type, message: "'\(op)' not supported between instances of '\(l.typeName)' and '\(r.typeName)'")
        }
    }

    /// Python `item in container`.
    func contains(_ container: RuntimeValue, _ item: RuntimeValue) throws -> Bool {
        switch container {
        case .string(let s):
            guard case .string(let sub) = item else {
                if item.isUndefined { throw Interpreter.undefinedError(item) }
                throw ChatTemplateError(kind: .type, message: "'in <string>' requires string as left operand, not \(item.typeName)")
            }
            return StringOps.find(sub, in: s) != nil
        case .array(let a), .tuple(let a): return a.contains { $0.pyEquals(item) }
        case .object(let d):
            if case .string(let k) = item { return d.contains(k) }
            return false
        case .namespace(let ns):
            if case .string(let k) = item { return ns.attributes.contains(k) }
            return false
        case .undefined: return false
        default:
            throw ChatTemplateError(kind: .type, message: "argument of type '\(container.typeName)' is not iterable")
        }
    }
}
