/// Splits template source into tokens, applying Jinja's whitespace rules as Hugging Face configures
/// them (`trim_blocks=True`, `lstrip_blocks=True`, `keep_trailing_newline=False`).
///
/// Whitespace handling happens here, as in Jinja's own lexer, because it depends on the raw source
/// around each tag (whether a tag starts a line), which the parser no longer sees.
struct Lexer {
    private let src: [Unicode.Scalar]
    private let lineStarts: [Int]
    private var pos = 0
    private var tokens: [Token] = []
    /// Whether the last consumed source ended with a newline: Jinja's `line_starting`, which lets
    /// `lstrip_blocks` strip indentation before a tag that follows a trimmed block end.
    private var lineStarting = true

    init(source: String) {
        // Jinja normalises every newline style to "\n" and drops one trailing newline.
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(source.unicodeScalars.count)
        var iterator = source.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar? = iterator.next()
        while let s = pending {
            pending = iterator.next()
            if s == "\r" {
                scalars.append("\n")
                if pending == "\n" { pending = iterator.next() }
            } else {
                scalars.append(s)
            }
        }
        if scalars.last == "\n" { scalars.removeLast() }
        src = scalars
        var starts = [0]
        for (i, s) in scalars.enumerated() where s == "\n" { starts.append(i + 1) }
        lineStarts = starts
    }

    func location(_ index: Int) -> SourceLocation {
        var lo = 0, hi = lineStarts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if lineStarts[mid] <= index { lo = mid } else { hi = mid - 1 }
        }
        return SourceLocation(line: lo + 1, column: index - lineStarts[lo] + 1)
    }

    private func error(_ message: String, at index: Int) -> ChatTemplateError {
        let loc = location(index)
        return ChatTemplateError(kind: .syntax, message: message, line: loc.line, column: loc.column)
    }

    private func at(_ i: Int) -> Unicode.Scalar? { i < src.count ? src[i] : nil }

    private func matches(_ s: String, at i: Int) -> Bool {
        var j = i
        for c in s.unicodeScalars {
            guard j < src.count, src[j] == c else { return false }
            j += 1
        }
        return true
    }

    private static func isSpaceOrTab(_ s: Unicode.Scalar) -> Bool { s == " " || s == "\t" }

    /// Python's `str.isspace`, close enough for template whitespace.
    static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0: return true
        default: return s.properties.isWhitespace
        }
    }

    private mutating func emit(_ kind: TokenKind, at index: Int) {
        tokens.append(Token(kind: kind, location: location(index)))
    }

    mutating func tokenize() throws -> [Token] {
        while pos < src.count {
            var opener: Int? = nil
            var i = pos
            while i + 1 < src.count {
                if src[i] == "{", src[i + 1] == "{" || src[i + 1] == "%" || src[i + 1] == "#" {
                    opener = i
                    break
                }
                i += 1
            }
            let tagStart = opener ?? src.count
            var textEnd = tagStart
            if let opener {
                let kind = src[opener + 1]
                let sign = at(opener + 2)
                if sign == "-" {
                    while textEnd > pos, Lexer.isWhitespace(src[textEnd - 1]) { textEnd -= 1 }
                } else if sign != "+", kind != "{" {
                    // lstrip_blocks: drop spaces/tabs between the start of the line and a block or comment tag.
                    var lineStart = textEnd
                    while lineStart > pos, src[lineStart - 1] != "\n" { lineStart -= 1 }
                    let onlyBlank = src[lineStart..<textEnd].allSatisfy(Lexer.isSpaceOrTab)
                    if onlyBlank, lineStart > pos || lineStarting { textEnd = lineStart }
                }
            }
            if textEnd > pos {
                emit(.text(String(String.UnicodeScalarView(src[pos..<textEnd]))), at: pos)
            }
            guard let opener else { pos = src.count; break }
            lineStarting = false
            let kind = src[opener + 1]
            pos = opener + 2
            if at(pos) == "-" || at(pos) == "+" { pos += 1 }
            switch kind {
            case "#": try lexComment(opener: opener)
            case "%":
                if try !lexRaw(opener: opener) {
                    emit(.blockBegin, at: opener)
                    try lexTagContents(isBlock: true, opener: opener)
                }
            default:
                emit(.variableBegin, at: opener)
                try lexTagContents(isBlock: false, opener: opener)
            }
        }
        emit(.eof, at: src.count)
        return tokens
    }

    /// Consumes what follows a block or comment end: all whitespace after `-`, nothing after `+`,
    /// and otherwise one newline (trim_blocks).
    private mutating func finishTag(endIndex: Int, sign: Unicode.Scalar?, isBlock: Bool) {
        pos = endIndex
        if sign == "-" {
            while pos < src.count, Lexer.isWhitespace(src[pos]) { pos += 1 }
        } else if sign != "+", isBlock, at(pos) == "\n" {
            pos += 1
        }
        lineStarting = pos > 0 && src[pos - 1] == "\n"
    }

    private mutating func lexComment(opener: Int) throws {
        var j = pos
        while j + 1 < src.count, !(src[j] == "#" && src[j + 1] == "}") { j += 1 }
        guard j + 1 < src.count else { throw error("unterminated comment: expected '#}'", at: opener) }
        let sign: Unicode.Scalar? = (j > pos && (src[j - 1] == "-" || src[j - 1] == "+")) ? src[j - 1] : nil
        finishTag(endIndex: j + 2, sign: sign, isBlock: true)
    }

    private func skipSpaces(_ i: Int) -> Int {
        var j = i
        while j < src.count, Lexer.isWhitespace(src[j]) { j += 1 }
        return j
    }

    /// `{% raw %}…{% endraw %}`: the body is emitted as text without interpreting tags.
    private mutating func lexRaw(opener: Int) throws -> Bool {
        var j = skipSpaces(pos)
        guard matches("raw", at: j) else { return false }
        j += 3
        j = skipSpaces(j)
        var sign: Unicode.Scalar? = nil
        if at(j) == "-" || at(j) == "+" { sign = src[j]; j += 1 }
        guard matches("%}", at: j) else { return false }
        finishTag(endIndex: j + 2, sign: sign, isBlock: true)
        let bodyStart = pos
        var k = pos
        while k < src.count {
            if src[k] == "{", at(k + 1) == "%" {
                var m = k + 2
                let startSign = at(m)
                if startSign == "-" || startSign == "+" { m += 1 }
                m = skipSpaces(m)
                if matches("endraw", at: m) {
                    m = skipSpaces(m + 6)
                    var endSign: Unicode.Scalar? = nil
                    if at(m) == "-" || at(m) == "+" { endSign = src[m]; m += 1 }
                    if matches("%}", at: m) {
                        var bodyEnd = k
                        if startSign == "-" {
                            while bodyEnd > bodyStart, Lexer.isWhitespace(src[bodyEnd - 1]) { bodyEnd -= 1 }
                        } else if startSign != "+" {
                            var lineStart = bodyEnd
                            while lineStart > bodyStart, src[lineStart - 1] != "\n" { lineStart -= 1 }
                            if src[lineStart..<bodyEnd].allSatisfy(Lexer.isSpaceOrTab), lineStart > bodyStart || lineStarting {
                                bodyEnd = lineStart
                            }
                        }
                        if bodyEnd > bodyStart {
                            emit(.text(String(String.UnicodeScalarView(src[bodyStart..<bodyEnd]))), at: bodyStart)
                        }
                        finishTag(endIndex: m + 2, sign: endSign, isBlock: true)
                        return true
                    }
                }
            }
            k += 1
        }
        throw error("unterminated raw block: expected '{% endraw %}'", at: opener)
    }

    private static let operators = ["//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=",
                                    "(", ")", "[", "]", "{", "}", ",", ".", ":", "|", ";"]

    private mutating func lexTagContents(isBlock: Bool, opener: Int) throws {
        var brackets: [String] = []
        let closer = isBlock ? "%}" : "}}"
        while true {
            pos = skipSpaces(pos)
            guard pos < src.count else {
                throw error("unexpected end of template: expected '\(closer)' to close the tag opened here", at: opener)
            }
            if brackets.isEmpty {
                if (src[pos] == "-" || (isBlock && src[pos] == "+")), matches(closer, at: pos + 1) {
                    emit(isBlock ? .blockEnd : .variableEnd, at: pos)
                    finishTag(endIndex: pos + 3, sign: src[pos], isBlock: isBlock)
                    return
                }
                if matches(closer, at: pos) {
                    emit(isBlock ? .blockEnd : .variableEnd, at: pos)
                    finishTag(endIndex: pos + 2, sign: nil, isBlock: isBlock)
                    return
                }
            }
            let c = src[pos]
            let start = pos
            if c == "'" || c == "\"" {
                emit(.string(try lexString(quote: c)), at: start)
            } else if c.properties.numericType != nil, c.isASCII {
                try lexNumber()
            } else if c == "_" || c.properties.isAlphabetic {
                var j = pos
                while j < src.count, src[j] == "_" || src[j].properties.isAlphabetic || (src[j].isASCII && src[j].properties.numericType != nil) {
                    j += 1
                }
                emit(.name(String(String.UnicodeScalarView(src[pos..<j]))), at: start)
                pos = j
            } else if let op = Lexer.operators.first(where: { matches($0, at: pos) }) {
                switch op {
                case "(", "[", "{": brackets.append(op)
                case ")", "]", "}":
                    // A closer that does not match the innermost opener is reported here, as Jinja's
                    // lexer does; one with nothing open is left for the parser to report with context.
                    if let open = brackets.last {
                        let expected = open == "(" ? ")" : (open == "[" ? "]" : "}")
                        guard op == expected else { throw error("unexpected '\(op)', expected '\(expected)'", at: pos) }
                        brackets.removeLast()
                    }
                default: break
                }
                emit(.op(op), at: start)
                pos += op.unicodeScalars.count
            } else {
                throw error("unexpected character '\(Character(c))' inside a tag", at: pos)
            }
        }
    }

    private static func isDigit(_ s: Unicode.Scalar?) -> Bool {
        guard let s else { return false }
        return s.value >= 0x30 && s.value <= 0x39
    }

    private mutating func lexNumber() throws {
        let start = pos
        var text = ""
        func digits() {
            while pos < src.count, Lexer.isDigit(src[pos]) || (src[pos] == "_" && Lexer.isDigit(at(pos + 1))) {
                if src[pos] != "_" { text.unicodeScalars.append(src[pos]) }
                pos += 1
            }
        }
        digits()
        var isFloat = false
        // `foo.0` is attribute access on an integer name, not a float, so only lex a fraction
        // when the number does not follow a dot.
        let afterDot: Bool = { if case .op(".")? = tokens.last?.kind { return true }; return false }()
        if !afterDot, at(pos) == ".", Lexer.isDigit(at(pos + 1)) {
            isFloat = true
            text += "."
            pos += 1
            digits()
        }
        if !afterDot, at(pos) == "e" || at(pos) == "E" {
            var j = pos + 1
            if at(j) == "+" || at(j) == "-" { j += 1 }
            if Lexer.isDigit(at(j)) {
                isFloat = true
                text += "e"
                if at(pos + 1) == "-" { text += "-" }
                pos = j
                digits()
            }
        }
        if isFloat {
            guard let d = Double(text) else { throw error("invalid number literal", at: start) }
            emit(.float(d), at: start)
        } else {
            guard let i = Int(text) else { throw error("integer literal too large", at: start) }
            emit(.integer(i), at: start)
        }
    }

    /// Reads a quoted string and decodes escapes like Python's `unicode-escape`, which is what Jinja uses.
    private mutating func lexString(quote: Unicode.Scalar) throws -> String {
        let start = pos
        pos += 1
        var out = String.UnicodeScalarView()
        while true {
            guard pos < src.count else { throw error("unterminated string literal", at: start) }
            let c = src[pos]
            if c == quote { pos += 1; break }
            if c != "\\" { out.append(c); pos += 1; continue }
            guard let e = at(pos + 1) else { throw error("unterminated string literal", at: start) }
            pos += 2
            switch e {
            case "n": out.append("\n")
            case "t": out.append("\t")
            case "r": out.append("\r")
            case "\\": out.append("\\")
            case "'": out.append("'")
            case "\"": out.append("\"")
            case "a": out.append("\u{07}")
            case "b": out.append("\u{08}")
            case "f": out.append("\u{0C}")
            case "v": out.append("\u{0B}")
            case "\n": break
            case "x", "u", "U":
                let count = e == "x" ? 2 : (e == "u" ? 4 : 8)
                var value: UInt32 = 0
                for _ in 0..<count {
                    guard let h = at(pos), let d = h.properties.numericType != nil || "abcdefABCDEF".unicodeScalars.contains(h) ? UInt32(String(h), radix: 16) : nil else {
                        throw error("truncated \\\(e) escape in string literal", at: pos)
                    }
                    value = value * 16 + d
                    pos += 1
                }
                guard let scalar = Unicode.Scalar(value) else { throw error("invalid escape in string literal", at: pos) }
                out.append(scalar)
            case "0"..."7":
                var value = e.value - 0x30
                var n = 1
                while n < 3, let d = at(pos), d.value >= 0x30, d.value <= 0x37 {
                    value = value * 8 + d.value - 0x30
                    pos += 1
                    n += 1
                }
                out.append(Unicode.Scalar(value) ?? "\u{FFFD}")
            default:
                // Python keeps unknown escapes verbatim, backslash included.
                out.append("\\")
                out.append(e)
            }
        }
        return String(out)
    }
}
