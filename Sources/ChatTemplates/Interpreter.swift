import Foundation

/// Executes a parsed template for one render. Holds the mutable state of that render (scopes,
/// counters), so a `ChatTemplate` stays immutable and shareable across threads.
final class Interpreter {
    let limits: RenderLimits
    let now: Date
    let timeZone: TimeZone
    /// Template-level variables (context plus top-level `set`); macros resolve names here.
    let root: Scope
    var current: Scope
    private var iterations = 0
    private var callDepth = 0

    init(context: [String: RuntimeValue], limits: RenderLimits, now: Date, timeZone: TimeZone) {
        self.limits = limits
        self.now = now
        self.timeZone = timeZone
        let globals = Scope(parent: nil)
        root = Scope(parent: globals)
        current = root
        globals.variables = Interpreter.makeGlobals()
        for (k, v) in context { root.variables[k] = v }
    }

    func render(_ nodes: [Node]) throws -> String {
        var out = ""
        _ = try execute(nodes, into: &out)
        return out
    }

    // MARK: - Errors

    func error(_ kind: ChatTemplateError.Kind, _ message: String, _ location: SourceLocation?) -> ChatTemplateError {
        ChatTemplateError(kind: kind, message: message, line: location?.line, column: location?.column)
    }

    /// Errors thrown from helpers without a location get the location of the node being evaluated.
    func locate<T>(_ location: SourceLocation, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let e as ChatTemplateError where e.line == nil && e.kind != .raised {
            throw ChatTemplateError(kind: e.kind, message: e.message, line: location.line, column: location.column)
        }
    }

    static func undefinedError(_ value: RuntimeValue) -> ChatTemplateError {
        if case .undefined(let message) = value { return ChatTemplateError(kind: .undefined, message: message) }
        return ChatTemplateError(kind: .undefined, message: "value is undefined")
    }

    // MARK: - Statements

    private func append(_ text: String, to out: inout String) throws {
        out += text
        if out.utf8.count > limits.maxOutputBytes {
            throw ChatTemplateError(kind: .limit, message: "rendered output exceeds \(limits.maxOutputBytes) bytes")
        }
    }

    func execute(_ nodes: [Node], into out: inout String) throws -> ControlFlow {
        for node in nodes {
            switch node {
            case .text(let s):
                try append(s, to: &out)
            case .output(let expr, let loc):
                let value = try evaluate(expr)
                try locate(loc) { try append(PythonFormatting.str(value), to: &out) }
            case .conditional(let branches, let otherwise):
                var taken = false
                for (condition, body) in branches where try evaluate(condition).isTruthy {
                    taken = true
                    let flow = try execute(body, into: &out)
                    if flow != .normal { return flow }
                    break
                }
                if !taken {
                    let flow = try execute(otherwise, into: &out)
                    if flow != .normal { return flow }
                }
            case .forLoop(let target, let iterable, let filter, let body, let otherwise, let loc):
                try runLoop(target: target, iterable: iterable, filter: filter, body: body, otherwise: otherwise, loc, into: &out)
            case .set(let target, let expr, let loc):
                let value = try evaluate(expr)
                try locate(loc) { try assign(target, value) }
            case .setBlock(let target, let body, let filters, let loc):
                var captured = ""
                _ = try execute(body, into: &captured)
                var value = RuntimeValue.string(captured)
                for (name, args, floc) in filters {
                    value = try applyFilter(name, value, args, floc)
                }
                try locate(loc) { try assign(target, value) }
            case .macro(let name, let parameters, let body):
                current.variables[name] = .callable(makeMacro(name: name, parameters: parameters, body: body))
            case .callBlock(let callerParameters, let call, let body, let loc):
                guard case .call(let callee, let args, let callLoc) = call else { continue }
                let definitionScope = current
                let caller = Callable("caller") { interp, positional, keyword in
                    let scope = Scope(parent: definitionScope)
                    for (i, (name, defaultValue)) in callerParameters.enumerated() {
                        if i < positional.count {
                            scope.variables[name] = positional[i]
                        } else if let kw = keyword.first(where: { $0.0 == name }) {
                            scope.variables[name] = kw.1
                        } else if let defaultValue {
                            scope.variables[name] = try interp.evaluate(defaultValue)
                        } else {
                            scope.variables[name] = .undefined("'\(name)' is undefined")
                        }
                    }
                    return try interp.withScope(scope) {
                        var text = ""
                        _ = try interp.execute(body, into: &text)
                        return .string(text)
                    }
                }
                let function = try evaluate(callee)
                var arguments = try evaluateArguments(args, callee: "call")
                arguments.keyword.append(("caller", .callable(caller)))
                let result = try invoke(function, arguments, callLoc)
                try locate(loc) { try append(PythonFormatting.str(result), to: &out) }
            case .filterBlock(let filters, let body):
                var captured = ""
                let flow = try execute(body, into: &captured)
                var value = RuntimeValue.string(captured)
                for (name, args, floc) in filters {
                    value = try applyFilter(name, value, args, floc)
                }
                try append(PythonFormatting.str(value), to: &out)
                if flow != .normal { return flow }
            case .breakLoop:
                return .breakLoop
            case .continueLoop:
                return .continueLoop
            }
        }
        return .normal
    }

    func withScope<T>(_ scope: Scope, _ body: () throws -> T) rethrows -> T {
        let saved = current
        current = scope
        defer { current = saved }
        return try body()
    }

    private func assign(_ target: AssignTarget, _ value: RuntimeValue) throws {
        switch target {
        case .name(let name):
            current.variables[name] = value
        case .attribute(let name, let attribute):
            guard case .namespace(let ns)? = current.lookup(name) else {
                throw ChatTemplateError(kind: .type, message: "cannot assign attribute on non-namespace object '\(name)'")
            }
            ns.attributes[attribute] = value
        case .tuple(let names):
            let items = try iterate(value)
            guard items.count == names.count else {
                throw ChatTemplateError(kind: .type, message: "cannot unpack \(items.count) value(s) into \(names.count) name(s)")
            }
            for (name, item) in zip(names, items) { current.variables[name] = item }
        }
    }

    func countIteration() throws {
        iterations += 1
        if iterations > limits.maxLoopIterations {
            throw ChatTemplateError(kind: .limit, message: "template exceeded \(limits.maxLoopIterations) loop iterations")
        }
    }

    private func runLoop(target: AssignTarget, iterable: Expression, filter: Expression?, body: [Node], otherwise: [Node],
                         _ loc: SourceLocation, into out: inout String) throws {
        let source = try evaluate(iterable)
        var items = try locate(loc) { try iterate(source) }
        let outer = current
        if let filter {
            var kept: [RuntimeValue] = []
            for item in items {
                try countIteration()
                let scope = Scope(parent: outer)
                let keep = try withScope(scope) { () throws -> Bool in
                    try locate(loc) { try assign(target, item) }
                    return try evaluate(filter).isTruthy
                }
                if keep { kept.append(item) }
            }
            items = kept
        }
        if items.isEmpty {
            _ = try withScope(Scope(parent: outer)) { try execute(otherwise, into: &out) }
            return
        }
        let length = items.count
        for (i, item) in items.enumerated() {
            try countIteration()
            let scope = Scope(parent: outer)
            var loop = OrderedDict<RuntimeValue>()
            loop["index"] = .int(i + 1)
            loop["index0"] = .int(i)
            loop["revindex"] = .int(length - i)
            loop["revindex0"] = .int(length - i - 1)
            loop["first"] = .bool(i == 0)
            loop["last"] = .bool(i == length - 1)
            loop["length"] = .int(length)
            loop["depth"] = .int(1)
            loop["depth0"] = .int(0)
            loop["previtem"] = i > 0 ? items[i - 1] : .undefined("there is no previous item")
            loop["nextitem"] = i + 1 < length ? items[i + 1] : .undefined("there is no next item")
            loop["cycle"] = .callable(Callable("cycle") { _, args, _ in
                guard !args.isEmpty else { throw ChatTemplateError(kind: .type, message: "no items for cycling given") }
                return args[i % args.count]
            })
            scope.variables["loop"] = .object(loop)
            let flow = try withScope(scope) { () throws -> ControlFlow in
                try locate(loc) { try assign(target, item) }
                return try execute(body, into: &out)
            }
            if flow == .breakLoop { break }
        }
    }

    private func makeMacro(name: String, parameters: [(String, Expression?)], body: [Node]) -> Callable {
        Callable(name) { interp, positional, keyword in
            try interp.callMacro(name: name, parameters: parameters, body: body, positional: positional, keyword: keyword)
        }
    }

    private func callMacro(name: String, parameters: [(String, Expression?)], body: [Node],
                           positional: [RuntimeValue], keyword: [(String, RuntimeValue)]) throws -> RuntimeValue {
        callDepth += 1
        defer { callDepth -= 1 }
        if callDepth > limits.maxCallDepth {
            throw ChatTemplateError(kind: .limit, message: "macro calls nested more than \(limits.maxCallDepth) deep")
        }
        if positional.count > parameters.count {
            throw ChatTemplateError(kind: .type, message: "macro '\(name)' takes not more than \(parameters.count) argument(s)")
        }
        let scope = Scope(parent: root)
        var extra = OrderedDict<RuntimeValue>()
        for (k, v) in keyword {
            if k == "caller" {
                scope.variables["caller"] = v
            } else if !parameters.contains(where: { $0.0 == k }) {
                extra[k] = v
            }
        }
        if !extra.isEmpty {
            throw ChatTemplateError(kind: .type, message: "macro '\(name)' takes no keyword argument '\(extra.keys[0])'")
        }
        return try withScope(scope) {
            for (i, (param, defaultValue)) in parameters.enumerated() {
                if i < positional.count {
                    scope.variables[param] = positional[i]
                } else if let kw = keyword.first(where: { $0.0 == param }) {
                    scope.variables[param] = kw.1
                } else if let defaultValue {
                    scope.variables[param] = try evaluate(defaultValue)
                } else {
                    scope.variables[param] = .undefined("parameter '\(param)' was not provided")
                }
            }
            scope.variables["varargs"] = .array([])
            scope.variables["kwargs"] = .object(OrderedDict())
            var text = ""
            _ = try execute(body, into: &text)
            return .string(text)
        }
    }

    // MARK: - Expressions

    func evaluate(_ expression: Expression) throws -> RuntimeValue {
        switch expression {
        case .literal(let v):
            return RuntimeValue(v)
        case .name(let name, _):
            return current.lookup(name) ?? .undefined("'\(name)' is undefined")
        case .list(let items):
            return .array(try items.map(evaluate))
        case .tuple(let items):
            return .tuple(try items.map(evaluate))
        case .dict(let pairs):
            var dict = OrderedDict<RuntimeValue>()
            for (k, v) in pairs {
                guard case .string(let key) = try evaluate(k) else {
                    throw ChatTemplateError(kind: .type, message: "only string keys are supported in dict literals")
                }
                dict[key] = try evaluate(v)
            }
            return .object(dict)
        case .attribute(let base, let name, let loc):
            let value = try evaluate(base)
            return try locate(loc) { try getAttribute(value, name) }
        case .item(let base, let key, let loc):
            let value = try evaluate(base)
            let k = try evaluate(key)
            return try locate(loc) { try getItem(value, k) }
        case .slice(let base, let start, let stop, let step, let loc):
            let value = try evaluate(base)
            let s = try start.map(evaluate), e = try stop.map(evaluate), st = try step.map(evaluate)
            return try locate(loc) { try slice(value, s, e, st) }
        case .call(let callee, let args, let loc):
            let function = try evaluate(callee)
            let arguments = try evaluateArguments(args, callee: Interpreter.describe(callee))
            return try invoke(function, arguments, loc)
        case .filter(let base, let name, let args, let loc):
            return try applyFilter(name, try evaluate(base), args, loc)
        case .test(let base, let name, let args, let negated, let loc):
            let value = try evaluate(base)
            let arguments = try evaluateArguments(args, callee: name)
            let result = try locate(loc) { try applyTest(name, value, arguments) }
            return .bool(result != negated)
        case .unary(let op, let operand, let loc):
            let value = try evaluate(operand)
            return try locate(loc) { try unaryOperation(op, value) }
        case .binary(let op, let lhs, let rhs, let loc):
            let l = try evaluate(lhs)
            let r = try evaluate(rhs)
            return try locate(loc) { try binaryOperation(op, l, r) }
        case .compare(let first, let rest, let loc):
            var left = try evaluate(first)
            for (op, rhs) in rest {
                let right = try evaluate(rhs)
                let holds = try locate(loc) { try compare(op, left, right) }
                if !holds { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .and(let lhs, let rhs):
            let l = try evaluate(lhs)
            return l.isTruthy ? try evaluate(rhs) : l
        case .or(let lhs, let rhs):
            let l = try evaluate(lhs)
            return l.isTruthy ? l : try evaluate(rhs)
        case .not(let operand):
            return .bool(!(try evaluate(operand).isTruthy))
        case .conditional(let condition, let then, let otherwise):
            if try evaluate(condition).isTruthy { return try evaluate(then) }
            if let otherwise { return try evaluate(otherwise) }
            return .undefined("the inline if-expression on this line evaluated to false and no else section was defined")
        }
    }

    private static func describe(_ e: Expression) -> String {
        switch e {
        case .name(let n, _): return n
        case .attribute(_, let n, _): return n
        default: return "function"
        }
    }

    func evaluateArguments(_ args: CallArguments, callee: String) throws -> ArgumentList {
        ArgumentList(positional: try args.positional.map(evaluate),
                     keyword: try args.keyword.map { ($0.0, try evaluate($0.1)) },
                     callee: callee)
    }

    func invoke(_ function: RuntimeValue, _ arguments: ArgumentList, _ loc: SourceLocation) throws -> RuntimeValue {
        switch function {
        case .callable(let c):
            return try locate(loc) { try c.body(self, arguments.positional, arguments.keyword) }
        case .undefined:
            throw error(.undefined, Interpreter.undefinedError(function).message, loc)
        default:
            throw error(.type, "'\(function.typeName)' object is not callable", loc)
        }
    }

    // MARK: - Access

    static let dictMethods: Set<String> = ["clear", "copy", "fromkeys", "get", "items", "keys", "pop", "popitem",
                                           "setdefault", "update", "values"]
    static let listMethods: Set<String> = ["append", "clear", "copy", "count", "extend", "index", "insert", "pop",
                                           "remove", "reverse", "sort"]
    static let stringMethods: Set<String> = ["capitalize", "center", "count", "endswith", "find", "format", "isalnum",
                                             "isalpha", "isdigit", "islower", "isnumeric", "isspace", "isupper", "join",
                                             "ljust", "lower", "lstrip", "removeprefix", "removesuffix", "replace", "rfind",
                                             "rjust", "rsplit", "rstrip", "split", "splitlines", "startswith", "strip",
                                             "swapcase", "title", "upper", "zfill"]

    private func boundMethod(_ receiver: RuntimeValue, _ name: String) -> RuntimeValue {
        .callable(Callable(name) { interp, positional, keyword in
            try interp.callMethod(receiver, name, ArgumentList(positional: positional, keyword: keyword, callee: name))
        })
    }

    /// `x.name`: Jinja tries the Python attribute first, then the item.
    func getAttribute(_ value: RuntimeValue, _ name: String) throws -> RuntimeValue {
        switch value {
        case .undefined:
            throw Interpreter.undefinedError(value)
        case .object(let dict):
            if Interpreter.dictMethods.contains(name) { return boundMethod(value, name) }
            return dict[name] ?? .undefined("'dict object' has no attribute '\(name)'")
        case .namespace(let ns):
            return ns.attributes[name] ?? .undefined("'Namespace object' has no attribute '\(name)'")
        case .string:
            if Interpreter.stringMethods.contains(name) { return boundMethod(value, name) }
        case .array:
            if Interpreter.listMethods.contains(name) { return boundMethod(value, name) }
        case .tuple:
            if name == "count" || name == "index" { return boundMethod(value, name) }
        default:
            break
        }
        return .undefined("'\(value.typeName) object' has no attribute '\(name)'")
    }

    /// `x[key]`: Jinja tries the item first, then (for string keys) the attribute.
    func getItem(_ value: RuntimeValue, _ key: RuntimeValue) throws -> RuntimeValue {
        switch value {
        case .undefined:
            throw Interpreter.undefinedError(value)
        case .object(let dict):
            if case .string(let k) = key {
                if let v = dict[k] { return v }
                return try getAttribute(value, k)
            }
            return .undefined("'dict object' has no attribute '\(PythonFormatting.repr(key))'")
        case .array(let items), .tuple(let items):
            if case .int(let i)? = key.number {
                let index = i < 0 ? i + items.count : i
                if index >= 0 && index < items.count { return items[index] }
                return .undefined("list object has no element \(i)")
            }
        case .string(let s):
            if case .int(let i)? = key.number {
                let scalars = Array(s.unicodeScalars)
                let index = i < 0 ? i + scalars.count : i
                if index >= 0 && index < scalars.count { return .string(String(Character(scalars[index]))) }
                return .undefined("str object has no element \(i)")
            }
        default:
            break
        }
        if case .string(let k) = key { return try getAttribute(value, k) }
        return .undefined("'\(value.typeName) object' has no attribute '\(PythonFormatting.repr(key))'")
    }

    /// Python slice semantics: negative indices count from the end, bounds are clamped.
    private func slice(_ value: RuntimeValue, _ start: RuntimeValue?, _ stop: RuntimeValue?, _ step: RuntimeValue?) throws -> RuntimeValue {
        func intOrNil(_ v: RuntimeValue?) throws -> Int? {
            guard let v else { return nil }
            switch v {
            case .none: return nil
            case .int(let i): return i
            case .bool(let b): return b ? 1 : 0
            default: throw ChatTemplateError(kind: .type, message: "slice indices must be integers or None")
            }
        }
        let indices = try Interpreter.sliceIndices(count: { () -> Int in
            switch value {
            case .array(let a), .tuple(let a): return a.count
            case .string(let s): return s.unicodeScalars.count
            default: return 0
            }
        }(), start: intOrNil(start), stop: intOrNil(stop), step: intOrNil(step))
        switch value {
        case .array(let a): return .array(indices.map { a[$0] })
        case .tuple(let a): return .tuple(indices.map { a[$0] })
        case .string(let s):
            let scalars = Array(s.unicodeScalars)
            var out = String.UnicodeScalarView()
            for i in indices { out.append(scalars[i]) }
            return .string(String(out))
        case .undefined: throw Interpreter.undefinedError(value)
        default: throw ChatTemplateError(kind: .type, message: "'\(value.typeName)' object is not subscriptable")
        }
    }

    static func sliceIndices(count: Int, start: Int?, stop: Int?, step: Int?) throws -> [Int] {
        let step = step ?? 1
        guard step != 0 else { throw ChatTemplateError(kind: .type, message: "slice step cannot be zero") }
        func clamp(_ v: Int?, _ defaultValue: Int, low: Int, high: Int) -> Int {
            guard var v else { return defaultValue }
            if v < 0 { v = v < -count ? low : v + count }  // avoid overflow on huge negatives
            return min(max(v, low), high)
        }
        var result: [Int] = []
        if step > 0 {
            var i = clamp(start, 0, low: 0, high: count)
            let end = clamp(stop, count, low: 0, high: count)
            while i < end {
                result.append(i)
                let (next, overflow) = i.addingReportingOverflow(step)
                if overflow { break }
                i = next
            }
        } else {
            var i = clamp(start, count - 1, low: -1, high: count - 1)
            let end = clamp(stop, -1, low: -1, high: count - 1)
            while i > end {
                result.append(i)
                let (next, overflow) = i.addingReportingOverflow(step)
                if overflow { break }
                i = next
            }
        }
        return result
    }

    /// Items a `for` loop (or a filter) walks: list items, dict keys, string characters.
    func iterate(_ value: RuntimeValue) throws -> [RuntimeValue] {
        switch value {
        case .array(let a), .tuple(let a): return a
        case .object(let d): return d.keys.map { .string($0) }
        case .string(let s): return s.unicodeScalars.map { .string(String(Character($0))) }
        case .undefined: return []
        default: throw ChatTemplateError(kind: .type, message: "'\(value.typeName)' object is not iterable")
        }
    }
}
