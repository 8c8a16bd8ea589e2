/// Parses the regular expressions clients send (SGLang's `regex`, JSON
/// schema's `pattern`): Python `re` / ECMAScript syntax for regular
/// languages. The whole output must match, so a leading `^` and a trailing
/// `$` are accepted and change nothing. What needs more than a finite
/// automaton (backreferences, lookaround, word boundaries) is refused by name.
/// `\d`, `\w` and `\s` are ASCII classes.
struct RegexParser {
    private let scalars: [Unicode.Scalar]
    private var position = 0

    /// Deeper nesting than this is refused (it only serves to exhaust the stack).
    static let maxDepth = 200
    /// Larger counted repetitions are refused: `{n}` copies the atom n times.
    static let maxCount = 10_000

    static func parse(_ pattern: String) throws(GrammarError) -> RegexNode {
        var parser = RegexParser(scalars: Array(pattern.unicodeScalars))
        if parser.peek == "^" { parser.position += 1 }
        let node = try parser.alternation(depth: 0)
        if parser.peek == "$" { parser.position += 1 }
        guard parser.position == parser.scalars.count else {
            throw parser.fail(parser.peek == ")" ? "unbalanced ')'" : "unexpected '\(parser.peek!)'")
        }
        return node
    }

    private init(scalars: [Unicode.Scalar]) { self.scalars = scalars }

    private var peek: Unicode.Scalar? { position < scalars.count ? scalars[position] : nil }

    private func fail(_ what: String) -> GrammarError {
        GrammarError("regex: \(what) at offset \(position)")
    }

    private mutating func next() throws(GrammarError) -> Unicode.Scalar {
        guard let c = peek else { throw fail("unexpected end of pattern") }
        position += 1
        return c
    }

    private mutating func alternation(depth: Int) throws(GrammarError) -> RegexNode {
        guard depth < Self.maxDepth else { throw fail("nesting deeper than \(Self.maxDepth)") }
        var branches = [try sequence(depth: depth)]
        while peek == "|" {
            position += 1
            branches.append(try sequence(depth: depth))
        }
        return branches.count == 1 ? branches[0] : .choice(branches)
    }

    private mutating func sequence(depth: Int) throws(GrammarError) -> RegexNode {
        var items: [RegexNode] = []
        while let c = peek, c != "|", c != ")" {
            // `$` ends the pattern only at its very end.
            if c == "$", position == scalars.count - 1 { break }
            let atom = try self.atom(depth: depth)
            items.append(try quantified(atom))
        }
        return items.count == 1 ? items[0] : .sequence(items)
    }

    private mutating func quantified(_ atom: RegexNode) throws(GrammarError) -> RegexNode {
        var node = atom
        while let c = peek {
            let bounds: (Int, Int?)
            switch c {
            case "*": position += 1; bounds = (0, nil)
            case "+": position += 1; bounds = (1, nil)
            case "?": position += 1; bounds = (0, 1)
            case "{":
                guard let counted = try countedBounds() else { return node }
                bounds = counted
            default: return node
            }
            // Lazy and greedy repetitions match the same strings.
            if peek == "?" { position += 1 } else if peek == "+" { throw fail("possessive quantifiers are not supported") }
            node = .repetition(node, min: bounds.0, max: bounds.1)
        }
        return node
    }

    /// `{n}`, `{n,}`, `{n,m}` (`{,m}` as Python reads it); nil when the brace
    /// is a literal (Python reads `a{x` as text).
    private mutating func countedBounds() throws(GrammarError) -> (Int, Int?)? {
        let start = position
        position += 1
        func number() -> Int? {
            var digits = ""
            while let c = peek, c.properties.numericType == .decimal, c.isASCII {
                digits.unicodeScalars.append(c)
                position += 1
            }
            return digits.isEmpty ? nil : Int(digits.prefix(9))
        }
        let lower = number()
        var upper = lower
        var hasComma = false
        if peek == "," {
            position += 1
            hasComma = true
            upper = number()
        }
        guard peek == "}", lower != nil || (hasComma && upper != nil) else {
            position = start
            return nil
        }
        position += 1
        let low = lower ?? 0
        let high: Int? = hasComma ? upper : low
        guard low <= Self.maxCount, (high ?? 0) <= Self.maxCount else { throw fail("a repetition count above \(Self.maxCount)") }
        if let high, high < low { throw fail("a repetition {\(low),\(high)} whose bounds are reversed") }
        return (low, high)
    }

    private mutating func atom(depth: Int) throws(GrammarError) -> RegexNode {
        let c = try next()
        switch c {
        case "(":
            if peek == "?" {
                position += 1
                let kind = try next()
                switch kind {
                case ":": break
                case "P" where peek == "<", "<" where peek != "=" && peek != "!":
                    if kind == "P" { position += 1 }
                    while let n = peek, n != ">" { position += 1 }
                    guard peek == ">" else { throw fail("an unterminated group name") }
                    position += 1
                case "=", "!", "<": throw fail("lookaround assertions are not supported")
                default: throw fail("the group flag '(?\(kind)' is not supported")
                }
            }
            let inner = try alternation(depth: depth + 1)
            guard peek == ")" else { throw fail("missing ')'") }
            position += 1
            return inner
        case "[": return .scalars(try characterClass())
        case ".": return .scalars(ScalarSet.any.subtracting(.scalar(0x0A)))
        case "\\": return try escape(inClass: false)
        case "*", "+", "?": throw fail("nothing to repeat before '\(c)'")
        case "^", "$": throw fail("'\(c)' inside the pattern is not supported (the whole output must match)")
        default: return .scalars(.scalar(c.value))
        }
    }

    private mutating func characterClass() throws(GrammarError) -> ScalarSet {
        var negated = false
        if peek == "^" { negated = true; position += 1 }
        var set = ScalarSet()
        var first = true
        while true {
            guard let c = peek else { throw fail("missing ']'") }
            if c == "]" && !first { position += 1; break }
            first = false
            let lower = try classMember()
            if peek == "-", position + 1 < scalars.count, scalars[position + 1] != "]" {
                guard case .single(let low) = lower else { throw fail("a range that starts with a class") }
                position += 1
                guard case .single(let high) = try classMember() else { throw fail("a range that ends with a class") }
                guard low <= high else { throw fail("a reversed range") }
                set.insert(low...high)
            } else {
                switch lower {
                case .single(let v): set.insert(v...v)
                case .set(let s): set = set.union(s)
                }
            }
        }
        return negated ? set.complement : set
    }

    private enum ClassMember { case single(UInt32), set(ScalarSet) }

    private mutating func classMember() throws(GrammarError) -> ClassMember {
        let c = try next()
        guard c == "\\" else { return .single(c.value) }
        guard case .scalars(let set) = try escape(inClass: true) else { throw fail("an escape that is not a character") }
        if set.ranges.count == 1, set.ranges[0].count == 1 { return .single(set.ranges[0].lowerBound) }
        return .set(set)
    }

    static let digits = ScalarSet([0x30...0x39])
    static let word = ScalarSet([0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x5F...0x5F])
    static let space = ScalarSet.ascii(" \t\n\r\u{0B}\u{0C}")

    private mutating func escape(inClass: Bool) throws(GrammarError) -> RegexNode {
        let c = try next()
        switch c {
        case "d": return .scalars(Self.digits)
        case "D": return .scalars(Self.digits.complement)
        case "w": return .scalars(Self.word)
        case "W": return .scalars(Self.word.complement)
        case "s": return .scalars(Self.space)
        case "S": return .scalars(Self.space.complement)
        case "n": return .scalars(.scalar(0x0A))
        case "t": return .scalars(.scalar(0x09))
        case "r": return .scalars(.scalar(0x0D))
        case "f": return .scalars(.scalar(0x0C))
        case "v": return .scalars(.scalar(0x0B))
        case "0": return .scalars(.scalar(0))
        case "b" where inClass: return .scalars(.scalar(0x08))
        case "x": return .scalars(.scalar(try hex(digits: 2)))
        case "u":
            if peek == "{" {
                position += 1
                var value: UInt32 = 0
                var count = 0
                while let h = peek, h != "}" {
                    guard let d = h.hexValue, count < 6 else { throw fail("a bad \\u{…} escape") }
                    value = value * 16 + d
                    count += 1
                    position += 1
                }
                guard peek == "}", count > 0 else { throw fail("a bad \\u{…} escape") }
                position += 1
                return try scalar(value)
            }
            return try scalar(try hex(digits: 4))
        case "U": return try scalar(try hex(digits: 8))
        case "1"..."9", "k": throw fail("backreferences are not supported")
        case "b", "B", "A", "Z", "z", "G": throw fail("the anchor '\\\(c)' is not supported")
        case "p", "P": throw fail("Unicode property classes ('\\\(c){…}') are not supported")
        default:
            guard !c.properties.isAlphabetic else { throw fail("the escape '\\\(c)' is not supported") }
            return .scalars(.scalar(c.value))
        }
    }

    private func scalar(_ value: UInt32) throws(GrammarError) -> RegexNode {
        guard value <= ScalarSet.maxScalar, !ScalarSet.surrogates.contains(value) else {
            throw fail("an escape of \(value), which is not a Unicode scalar")
        }
        return .scalars(.scalar(value))
    }

    private mutating func hex(digits: Int) throws(GrammarError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<digits {
            guard let d = try next().hexValue else { throw fail("a bad hexadecimal escape") }
            value = value * 16 + d
        }
        return value
    }
}

private extension Unicode.Scalar {
    var hexValue: UInt32? {
        switch value {
        case 0x30...0x39: value - 0x30
        case 0x41...0x46: value - 0x41 + 10
        case 0x61...0x66: value - 0x61 + 10
        default: nil
        }
    }
}
