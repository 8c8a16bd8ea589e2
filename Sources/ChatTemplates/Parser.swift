/// Recursive-descent parser for the Jinja subset, following Jinja's own grammar and operator
/// precedence (filters bind tighter than arithmetic; `not` looser than comparisons).
struct Parser {
    private let tokens: [Token]
    private var index = 0
    private var depth = 0
    private var loopDepth = 0
    private var macroDepth = 0

    /// Nesting bound: deeper templates are rejected rather than risk exhausting the stack.
    static let maxDepth = 200

    init(tokens: [Token]) { self.tokens = tokens }

    // MARK: - Token helpers

    private var current: Token { tokens[index] }

    private mutating func advance() -> Token {
        let t = tokens[index]
        if index < tokens.count - 1 { index += 1 }
        return t
    }

    private func error(_ message: String, at token: Token? = nil) -> ChatTemplateError {
        let loc = (token ?? current).location
        return ChatTemplateError(kind: .syntax, message: message, line: loc.line, column: loc.column)
    }

    private func isName(_ name: String, _ token: Token? = nil) -> Bool {
        if case .name(let n) = (token ?? current).kind { return n == name }
        return false
    }

    private func isOp(_ op: String) -> Bool {
        if case .op(let o) = current.kind { return o == op }
        return false
    }

    private mutating func expectOp(_ op: String, _ context: String) throws {
        guard isOp(op) else { throw error("expected '\(op)' \(context), found \(current.kind.display)") }
        _ = advance()
    }

    private mutating func expectName(_ context: String) throws -> String {
        guard case .name(let n) = current.kind else { throw error("expected a name \(context), found \(current.kind.display)") }
        _ = advance()
        return n
    }

    private mutating func expectBlockEnd(_ tag: String) throws {
        guard case .blockEnd = current.kind else {
            throw error("expected '%}' to end the '\(tag)' tag, found \(current.kind.display)")
        }
        _ = advance()
    }

    private mutating func enter() throws {
        depth += 1
        if depth > Parser.maxDepth { throw error("template nesting is too deep (more than \(Parser.maxDepth) levels)") }
    }

    // MARK: - Statements

    mutating func parseTemplate() throws -> [Node] {
        let (nodes, _) = try parseBody(until: [], opener: nil)
        return nodes
    }

    /// Parses nodes until a block tag whose name is in `endTags`; that name is consumed and returned,
    /// the rest of its tag is left for the caller.
    private mutating func parseBody(until endTags: Set<String>, opener: (String, Token)?) throws -> ([Node], String?) {
        try enter(); defer { depth -= 1 }
        var nodes: [Node] = []
        while true {
            let token = current
            switch token.kind {
            case .text(let s):
                _ = advance()
                nodes.append(.text(s))
            case .variableBegin:
                _ = advance()
                let expr = try parseTuple(allowCondition: true)
                guard case .variableEnd = current.kind else {
                    throw error("expected '}}' to end the expression, found \(current.kind.display)")
                }
                _ = advance()
                nodes.append(.output(expr, token.location))
            case .blockBegin:
                _ = advance()
                guard case .name(let tag) = current.kind else {
                    throw error("expected a tag name after '{%', found \(current.kind.display)")
                }
                if endTags.contains(tag) {
                    _ = advance()
                    return (nodes, tag)
                }
                nodes.append(try parseStatement(tag))
            case .eof:
                if let (name, openToken) = opener {
                    let wanted = endTags.sorted().map { "'{% \($0) %}'" }.joined(separator: " or ")
                    throw error("unexpected end of template: the '\(name)' tag opened at line \(openToken.location.line), column \(openToken.location.column) needs \(wanted)")
                }
                return (nodes, nil)
            default:
                throw error("unexpected \(token.kind.display)")
            }
        }
    }

    private mutating func parseStatement(_ tag: String) throws -> Node {
        let tagToken = advance()
        switch tag {
        case "if": return try parseIf(tagToken)
        case "for": return try parseFor(tagToken)
        case "set": return try parseSet(tagToken)
        case "macro": return try parseMacro(tagToken)
        case "call": return try parseCallBlock(tagToken)
        case "filter":
            let filters = try parseFilterChain(leadingPipe: false)
            try expectBlockEnd("filter")
            let (body, _) = try parseBody(until: ["endfilter"], opener: ("filter", tagToken))
            try expectBlockEnd("endfilter")
            return .filterBlock(filters: filters, body: body)
        case "generation":
            // Hugging Face's AssistantTracker extension: marks assistant spans, renders its body unchanged.
            try expectBlockEnd("generation")
            let (body, _) = try parseBody(until: ["endgeneration"], opener: ("generation", tagToken))
            try expectBlockEnd("endgeneration")
            return .filterBlock(filters: [], body: body)
        case "break", "continue":
            guard loopDepth > 0 else { throw error("'\(tag)' outside of a for loop", at: tagToken) }
            try expectBlockEnd(tag)
            return tag == "break" ? .breakLoop(tagToken.location) : .continueLoop(tagToken.location)
        default:
            if Builtins.unsupportedTags.contains(tag) {
                throw error("the '\(tag)' tag is not supported by this chat template renderer", at: tagToken)
            }
            throw error("unknown tag '\(tag)': expected one of if, for, set, macro, call, filter, raw, break, continue", at: tagToken)
        }
    }

    private mutating func parseIf(_ tagToken: Token) throws -> Node {
        var branches: [(Expression, [Node])] = []
        var condition = try parseTuple(allowCondition: true)
        try expectBlockEnd("if")
        while true {
            let (body, end) = try parseBody(until: ["elif", "else", "endif"], opener: ("if", tagToken))
            branches.append((condition, body))
            switch end {
            case "elif":
                condition = try parseTuple(allowCondition: true)
                try expectBlockEnd("elif")
            case "else":
                try expectBlockEnd("else")
                let (otherwise, _) = try parseBody(until: ["endif"], opener: ("if", tagToken))
                try expectBlockEnd("endif")
                return .conditional(branches: branches, otherwise: otherwise)
            default:
                try expectBlockEnd("endif")
                return .conditional(branches: branches, otherwise: [])
            }
        }
    }

    private mutating func parseAssignTarget(_ context: String) throws -> AssignTarget {
        let parenthesized = isOp("(")
        if parenthesized { _ = advance() }
        var names = [try expectName(context)]
        if !parenthesized, isOp(".") {
            _ = advance()
            let attr = try expectName("after '.' in \(context)")
            return .attribute(names[0], attr)
        }
        while isOp(",") {
            _ = advance()
            if case .name = current.kind { names.append(try expectName(context)) } else { break }
        }
        if parenthesized { try expectOp(")", "to close the target list") }
        return names.count == 1 && !parenthesized ? .name(names[0]) : .tuple(names)
    }

    private mutating func parseFor(_ tagToken: Token) throws -> Node {
        let target = try parseAssignTarget("as the for-loop variable")
        if case .attribute = target { throw error("a for-loop variable cannot be an attribute", at: tagToken) }
        guard isName("in") else { throw error("expected 'in' in the for tag, found \(current.kind.display)") }
        _ = advance()
        // No conditional expression here: a bare `if` starts the loop filter, as in Jinja.
        let iterable = try parseTuple(allowCondition: false)
        var filter: Expression? = nil
        if isName("if") {
            _ = advance()
            filter = try parseTuple(allowCondition: true)
        }
        if isName("recursive") { throw error("recursive for loops are not supported") }
        try expectBlockEnd("for")
        loopDepth += 1
        let (body, end) = try parseBody(until: ["else", "endfor"], opener: ("for", tagToken))
        loopDepth -= 1
        var otherwise: [Node] = []
        if end == "else" {
            try expectBlockEnd("else")
            (otherwise, _) = try parseBody(until: ["endfor"], opener: ("for", tagToken))
        }
        try expectBlockEnd("endfor")
        return .forLoop(target: target, iterable: iterable, filter: filter, body: body, otherwise: otherwise, tagToken.location)
    }

    private mutating func parseSet(_ tagToken: Token) throws -> Node {
        let target = try parseAssignTarget("after 'set'")
        if isOp("=") {
            _ = advance()
            let value = try parseTuple(allowCondition: true)
            try expectBlockEnd("set")
            return .set(target, value, tagToken.location)
        }
        let filters = isOp("|") ? try parseFilterChain(leadingPipe: true) : []
        try expectBlockEnd("set")
        let (body, _) = try parseBody(until: ["endset"], opener: ("set", tagToken))
        try expectBlockEnd("endset")
        return .setBlock(target, body: body, filters: filters, tagToken.location)
    }

    private mutating func parseParameters(_ context: String) throws -> [(String, Expression?)] {
        var params: [(String, Expression?)] = []
        try expectOp("(", context)
        while !isOp(")") {
            if !params.isEmpty { try expectOp(",", "between parameters") }
            if isOp(")") { break }
            let name = try expectName("as a parameter name")
            var defaultValue: Expression? = nil
            if isOp("=") {
                _ = advance()
                defaultValue = try parseExpression(allowCondition: true)
            } else if params.contains(where: { $0.1 != nil }) {
                throw error("parameter '\(name)' without a default follows one with a default")
            }
            params.append((name, defaultValue))
        }
        _ = advance()
        return params
    }

    private mutating func parseMacro(_ tagToken: Token) throws -> Node {
        let name = try expectName("after 'macro'")
        let params = try parseParameters("after the macro name")
        try expectBlockEnd("macro")
        macroDepth += 1
        let savedLoopDepth = loopDepth
        loopDepth = 0
        let (body, _) = try parseBody(until: ["endmacro"], opener: ("macro", tagToken))
        loopDepth = savedLoopDepth
        macroDepth -= 1
        if case .name = current.kind { _ = advance() }
        try expectBlockEnd("endmacro")
        return .macro(name: name, parameters: params, body: body)
    }

    private mutating func parseCallBlock(_ tagToken: Token) throws -> Node {
        let params = isOp("(") ? try parseParameters("for caller parameters") : []
        let call = try parseExpression(allowCondition: true)
        guard case .call = call else { throw error("expected a macro call in the call tag", at: tagToken) }
        try expectBlockEnd("call")
        let (body, _) = try parseBody(until: ["endcall"], opener: ("call", tagToken))
        try expectBlockEnd("endcall")
        return .callBlock(callerParameters: params, call: call, body: body, tagToken.location)
    }

    private mutating func parseFilterChain(leadingPipe: Bool) throws -> [(String, CallArguments, SourceLocation)] {
        var filters: [(String, CallArguments, SourceLocation)] = []
        if leadingPipe { try expectOp("|", "before a filter") }
        while true {
            let token = current
            let name = try expectName("as a filter name")
            guard Builtins.filters.contains(name) else { throw error("unknown filter '\(name)'", at: token) }
            let args = isOp("(") ? try parseCallArguments() : .none
            filters.append((name, args, token.location))
            guard isOp("|") else { return filters }
            _ = advance()
        }
    }

    // MARK: - Expressions

    /// An expression, or a bare tuple `a, b` where Jinja allows one (set values, output, for iterables).
    private mutating func parseTuple(allowCondition: Bool) throws -> Expression {
        let first = try parseExpression(allowCondition: allowCondition)
        guard isOp(",") else { return first }
        var items = [first]
        while isOp(",") {
            _ = advance()
            if case .blockEnd = current.kind { break }
            if case .variableEnd = current.kind { break }
            if isName("if") || isName("in") { break }
            items.append(try parseExpression(allowCondition: allowCondition))
        }
        return .tuple(items)
    }

    mutating func parseExpression(allowCondition: Bool) throws -> Expression {
        try enter(); defer { depth -= 1 }
        return allowCondition ? try parseConditional() : try parseOr()
    }

    private mutating func parseConditional() throws -> Expression {
        var expr = try parseOr()
        while isName("if") {
            _ = advance()
            let condition = try parseOr()
            var otherwise: Expression? = nil
            if isName("else") {
                _ = advance()
                otherwise = try parseConditional()
            }
            expr = .conditional(condition: condition, then: expr, otherwise: otherwise)
        }
        return expr
    }

    private mutating func parseOr() throws -> Expression {
        var left = try parseAnd()
        while isName("or") {
            _ = advance()
            left = .or(left, try parseAnd())
        }
        return left
    }

    private mutating func parseAnd() throws -> Expression {
        var left = try parseNot()
        while isName("and") {
            _ = advance()
            left = .and(left, try parseNot())
        }
        return left
    }

    private mutating func parseNot() throws -> Expression {
        if isName("not") {
            _ = advance()
            try enter(); defer { depth -= 1 }
            return .not(try parseNot())
        }
        return try parseCompare()
    }

    private mutating func parseCompare() throws -> Expression {
        let location = current.location
        let first = try parseMath1()
        var ops: [(String, Expression)] = []
        while true {
            if case .op(let o) = current.kind, ["==", "!=", "<", "<=", ">", ">="].contains(o) {
                _ = advance()
                ops.append((o, try parseMath1()))
            } else if isName("in") {
                _ = advance()
                ops.append(("in", try parseMath1()))
            } else if isName("not"), index + 1 < tokens.count, isName("in", tokens[index + 1]) {
                _ = advance(); _ = advance()
                ops.append(("notin", try parseMath1()))
            } else {
                break
            }
        }
        return ops.isEmpty ? first : .compare(first, ops, location)
    }

    private mutating func parseMath1() throws -> Expression {
        var left = try parseConcat()
        while case .op(let o) = current.kind, o == "+" || o == "-" {
            let loc = advance().location
            left = .binary(o, left, try parseConcat(), loc)
        }
        return left
    }

    private mutating func parseConcat() throws -> Expression {
        var left = try parseMath2()
        while isOp("~") {
            let loc = advance().location
            left = .binary("~", left, try parseMath2(), loc)
        }
        return left
    }

    private mutating func parseMath2() throws -> Expression {
        var left = try parsePow()
        while case .op(let o) = current.kind, ["*", "/", "//", "%"].contains(o) {
            let loc = advance().location
            left = .binary(o, left, try parsePow(), loc)
        }
        return left
    }

    private mutating func parsePow() throws -> Expression {
        var left = try parseUnary(withFilter: true)
        while isOp("**") {
            let loc = advance().location
            left = .binary("**", left, try parseUnary(withFilter: true), loc)
        }
        return left
    }

    private mutating func parseUnary(withFilter: Bool) throws -> Expression {
        try enter(); defer { depth -= 1 }
        var node: Expression
        if case .op(let o) = current.kind, o == "-" || o == "+" {
            let loc = advance().location
            node = .unary(o, try parseUnary(withFilter: false), loc)
        } else {
            node = try parsePrimary()
        }
        node = try parsePostfix(node)
        if withFilter { node = try parseFilterExpression(node) }
        return node
    }

    private mutating func parsePrimary() throws -> Expression {
        let token = current
        switch token.kind {
        case .name(let n):
            _ = advance()
            switch n {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.null)
            default: return .name(n, token.location)
            }
        case .string(var s):
            _ = advance()
            // Adjacent string literals concatenate, as in Python.
            while case .string(let more) = current.kind {
                s += more
                _ = advance()
            }
            return .literal(.string(s))
        case .integer(let i):
            _ = advance()
            return .literal(.int(i))
        case .float(let d):
            _ = advance()
            return .literal(.double(d))
        case .op("("):
            _ = advance()
            if isOp(")") { _ = advance(); return .tuple([]) }
            let first = try parseExpression(allowCondition: true)
            if isOp(")") { _ = advance(); return first }
            var items = [first]
            while isOp(",") {
                _ = advance()
                if isOp(")") { break }
                items.append(try parseExpression(allowCondition: true))
            }
            try expectOp(")", "to close the parenthesis")
            return .tuple(items)
        case .op("["):
            _ = advance()
            var items: [Expression] = []
            while !isOp("]") {
                if !items.isEmpty {
                    try expectOp(",", "between list items")
                    if isOp("]") { break }
                }
                items.append(try parseExpression(allowCondition: true))
            }
            _ = advance()
            return .list(items)
        case .op("{"):
            _ = advance()
            var pairs: [(Expression, Expression)] = []
            while !isOp("}") {
                if !pairs.isEmpty {
                    try expectOp(",", "between dict items")
                    if isOp("}") { break }
                }
                let key = try parseExpression(allowCondition: true)
                try expectOp(":", "after a dict key")
                pairs.append((key, try parseExpression(allowCondition: true)))
            }
            _ = advance()
            return .dict(pairs)
        default:
            throw error("expected an expression, found \(token.kind.display)")
        }
    }

    private mutating func parsePostfix(_ base: Expression) throws -> Expression {
        var node = base
        while true {
            let token = current
            if isOp(".") {
                _ = advance()
                switch current.kind {
                case .name(let n):
                    _ = advance()
                    node = .attribute(node, n, token.location)
                case .integer(let i):
                    _ = advance()
                    node = .item(node, .literal(.int(i)), token.location)
                default:
                    throw error("expected an attribute name after '.', found \(current.kind.display)")
                }
            } else if isOp("[") {
                _ = advance()
                node = try parseSubscript(node, token.location)
            } else if isOp("(") {
                node = .call(node, try parseCallArguments(), token.location)
            } else {
                return node
            }
        }
    }

    private mutating func parseSubscript(_ base: Expression, _ location: SourceLocation) throws -> Expression {
        var start: Expression? = nil
        if !isOp(":") {
            start = try parseExpression(allowCondition: true)
            if isOp("]") {
                _ = advance()
                return .item(base, start!, location)
            }
            if isOp(",") { throw error("tuple subscripts are not supported") }
        }
        try expectOp(":", "in a subscript")
        var stop: Expression? = nil
        var step: Expression? = nil
        if !isOp("]") && !isOp(":") { stop = try parseExpression(allowCondition: true) }
        if isOp(":") {
            _ = advance()
            if !isOp("]") { step = try parseExpression(allowCondition: true) }
        }
        try expectOp("]", "to close the subscript")
        return .slice(base, start: start, stop: stop, step: step, location)
    }

    private mutating func parseCallArguments() throws -> CallArguments {
        try expectOp("(", "to start arguments")
        var args = CallArguments()
        while !isOp(")") {
            if !args.positional.isEmpty || !args.keyword.isEmpty {
                try expectOp(",", "between arguments")
                if isOp(")") { break }
            }
            if isOp("*") || isOp("**") { throw error("*args and **kwargs in calls are not supported") }
            if case .name(let n) = current.kind, index + 1 < tokens.count, case .op("=") = tokens[index + 1].kind {
                _ = advance(); _ = advance()
                args.keyword.append((n, try parseExpression(allowCondition: true)))
            } else {
                if !args.keyword.isEmpty { throw error("positional argument follows keyword argument") }
                args.positional.append(try parseExpression(allowCondition: true))
            }
        }
        _ = advance()
        return args
    }

    private mutating func parseFilterExpression(_ base: Expression) throws -> Expression {
        var node = base
        while true {
            let token = current
            if isOp("|") {
                _ = advance()
                let nameToken = current
                let name = try expectName("as a filter name after '|'")
                guard Builtins.filters.contains(name) else { throw error("unknown filter '\(name)'", at: nameToken) }
                let args = isOp("(") ? try parseCallArguments() : .none
                node = .filter(node, name: name, args, nameToken.location)
            } else if isName("is") {
                _ = advance()
                var negated = false
                if isName("not") { _ = advance(); negated = true }
                let nameToken = current
                var name: String
                switch current.kind {
                case .name(let n): name = n
                case .op(let o) where ["==", "!=", "<", "<=", ">", ">="].contains(o): name = o
                default: throw error("expected a test name after 'is', found \(current.kind.display)")
                }
                _ = advance()
                // `is none`/`is true`/`is false` lex as names in either spelling.
                if name == "None" { name = "none" }
                if name == "True" { name = "true" }
                if name == "False" { name = "false" }
                guard Builtins.tests.contains(name) else { throw error("unknown test '\(name)'", at: nameToken) }
                var args = CallArguments.none
                if isOp("(") {
                    args = try parseCallArguments()
                } else if startsBareTestArgument() {
                    if isName("is") { throw error("tests cannot be chained with 'is'") }
                    args.positional = [try parsePostfix(try parsePrimary())]
                }
                node = .test(node, name: name, args, negated: negated, nameToken.location)
            } else if isOp("(") {
                let args = try parseCallArguments()
                node = .call(node, args, token.location)
            } else {
                return node
            }
        }
    }

    /// Jinja lets a test take one argument without parentheses (`x is divisibleby 3`).
    private func startsBareTestArgument() -> Bool {
        switch current.kind {
        case .name(let n): return !["else", "or", "and"].contains(n)
        case .string, .integer, .float: return true
        case .op(let o): return o == "[" || o == "{"
        default: return false
        }
    }
}
