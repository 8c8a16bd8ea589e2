/// Python `str` operations, done on Unicode scalars (Python's code points). Swift's `String`
/// methods compare by canonical equivalence and count grapheme clusters, which would make
/// `len`, slicing and `replace` disagree with Python on some non-ASCII text.
enum StringOps {
    static func scalars(_ s: String) -> [Unicode.Scalar] { Array(s.unicodeScalars) }

    static func string(_ scalars: some Sequence<Unicode.Scalar>) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }

    static func length(_ s: String) -> Int { s.unicodeScalars.count }

    /// Index (in scalars) of the first occurrence of `needle` at or after `from`.
    static func find(_ needle: String, in haystack: String, from: Int = 0) -> Int? {
        find(scalars(needle), in: scalars(haystack), from: from)
    }

    static func find(_ n: [Unicode.Scalar], in h: [Unicode.Scalar], from: Int = 0) -> Int? {
        if n.isEmpty { return from <= h.count ? from : nil }
        guard h.count >= n.count, from <= h.count - n.count else { return nil }
        var i = max(0, from)
        while i <= h.count - n.count {
            if h[i] == n[0] {
                var j = 1
                while j < n.count && h[i + j] == n[j] { j += 1 }
                if j == n.count { return i }
            }
            i += 1
        }
        return nil
    }

    static func rfind(_ needle: String, in haystack: String) -> Int? {
        let n = scalars(needle), h = scalars(haystack)
        guard h.count >= n.count else { return nil }
        var i = h.count - n.count
        while i >= 0 {
            if Array(h[i..<i + n.count]) == n { return i }
            i -= 1
        }
        return nil
    }

    static func hasPrefix(_ s: String, _ prefix: String) -> Bool {
        s.unicodeScalars.starts(with: prefix.unicodeScalars)
    }

    static func hasSuffix(_ s: String, _ suffix: String) -> Bool {
        s.unicodeScalars.reversed().starts(with: suffix.unicodeScalars.reversed())
    }

    static func count(_ needle: String, in haystack: String) -> Int {
        let n = scalars(needle), h = scalars(haystack)
        if n.isEmpty { return h.count + 1 }
        var c = 0, i = 0
        while let f = find(n, in: h, from: i) {
            c += 1
            i = f + n.count
        }
        return c
    }

    /// `str.replace(old, new, count)`; an empty `old` inserts `new` between every character, as Python does.
    static func replace(_ s: String, _ old: String, _ new: String, count limit: Int = -1) -> String {
        let h = scalars(s), o = scalars(old), n = scalars(new)
        var out: [Unicode.Scalar] = []
        var replaced = 0
        if o.isEmpty {
            for c in h {
                if limit < 0 || replaced < limit { out += n; replaced += 1 }
                out.append(c)
            }
            if limit < 0 || replaced < limit { out += n }
            return string(out)
        }
        var i = 0
        while i < h.count {
            if limit < 0 || replaced < limit, let f = find(o, in: h, from: i) {
                out += h[i..<f]
                out += n
                i = f + o.count
                replaced += 1
            } else {
                out += h[i...]
                break
            }
        }
        return string(out)
    }

    static func strip(_ s: String, chars: String?, leading: Bool, trailing: Bool) -> String {
        let h = scalars(s)
        let set: Set<Unicode.Scalar>? = chars.map { Set($0.unicodeScalars) }
        func strippable(_ c: Unicode.Scalar) -> Bool { set.map { $0.contains(c) } ?? Lexer.isWhitespace(c) }
        var start = 0, end = h.count
        if leading { while start < end && strippable(h[start]) { start += 1 } }
        if trailing { while end > start && strippable(h[end - 1]) { end -= 1 } }
        return string(h[start..<end])
    }

    /// `str.split(sep, maxsplit)`; with no separator, splits on whitespace runs and drops empty parts.
    static func split(_ s: String, separator: String?, maxSplit: Int = -1) throws -> [String] {
        let h = scalars(s)
        var parts: [String] = []
        guard let separator else {
            var i = 0
            while i < h.count {
                while i < h.count && Lexer.isWhitespace(h[i]) { i += 1 }
                if i >= h.count { break }
                if maxSplit >= 0 && parts.count == maxSplit {
                    var end = h.count
                    while end > i && Lexer.isWhitespace(h[end - 1]) { end -= 1 }
                    parts.append(string(h[i..<end]))
                    return parts
                }
                let start = i
                while i < h.count && !Lexer.isWhitespace(h[i]) { i += 1 }
                parts.append(string(h[start..<i]))
            }
            return parts
        }
        let sep = scalars(separator)
        guard !sep.isEmpty else { throw ChatTemplateError(kind: .type, message: "empty separator") }
        var i = 0
        while maxSplit < 0 || parts.count < maxSplit, let f = find(sep, in: h, from: i) {
            parts.append(string(h[i..<f]))
            i = f + sep.count
        }
        parts.append(string(h[i...]))
        return parts
    }

    /// `str.rsplit(sep, maxsplit)` with an explicit separator.
    static func rsplit(_ s: String, separator: String, maxSplit: Int) throws -> [String] {
        if maxSplit < 0 { return try split(s, separator: separator) }
        let h = scalars(s), sep = scalars(separator)
        guard !sep.isEmpty else { throw ChatTemplateError(kind: .type, message: "empty separator") }
        var parts: [String] = []
        var end = h.count
        var i = h.count - sep.count
        while i >= 0 && parts.count < maxSplit {
            if Array(h[i..<i + sep.count]) == sep {
                parts.insert(string(h[(i + sep.count)..<end]), at: 0)
                end = i
                i -= sep.count
            } else {
                i -= 1
            }
        }
        parts.insert(string(h[0..<end]), at: 0)
        return parts
    }

    static func splitLines(_ s: String) -> [String] {
        var parts: [String] = []
        var current: [Unicode.Scalar] = []
        let h = scalars(s)
        var i = 0
        while i < h.count {
            let c = h[i]
            if c == "\n" || c == "\r" || c == "\u{0B}" || c == "\u{0C}" || c == "\u{1C}" || c == "\u{1D}" || c == "\u{1E}"
                || c == "\u{85}" || c == "\u{2028}" || c == "\u{2029}" {
                parts.append(string(current))
                current = []
                if c == "\r", i + 1 < h.count, h[i + 1] == "\n" { i += 1 }
            } else {
                current.append(c)
            }
            i += 1
        }
        if !current.isEmpty { parts.append(string(current)) }
        return parts
    }

    static func upper(_ s: String) -> String { s.uppercased() }
    static func lower(_ s: String) -> String { s.lowercased() }

    /// `str.capitalize()`: first character upper-cased, the rest lower-cased.
    static func capitalize(_ s: String) -> String {
        guard let first = s.unicodeScalars.first else { return s }
        return String(first).uppercased() + string(s.unicodeScalars.dropFirst()).lowercased()
    }

    private static func isCased(_ c: Unicode.Scalar) -> Bool {
        c.properties.isLowercase || c.properties.isUppercase || c.properties.generalCategory == .titlecaseLetter
    }

    /// `str.title()`: a cased character after an uncased one starts a word.
    static func pythonTitle(_ s: String) -> String {
        var out = ""
        var previousCased = false
        for c in s.unicodeScalars {
            out += previousCased ? String(c).lowercased() : String(c).uppercased()
            previousCased = isCased(c)
        }
        return out
    }

    /// Jinja's `title` filter: words start after spaces, hyphens and opening brackets.
    static func jinjaTitle(_ s: String) -> String {
        var out = ""
        var atWordStart = true
        for c in s.unicodeScalars {
            if Lexer.isWhitespace(c) || "-({[<".unicodeScalars.contains(c) {
                out.unicodeScalars.append(c)
                atWordStart = true
            } else if atWordStart {
                out += String(c).uppercased()
                atWordStart = false
            } else {
                out += String(c).lowercased()
            }
        }
        return out
    }
}
