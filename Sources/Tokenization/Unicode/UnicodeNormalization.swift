/// The four Unicode normalization forms (UAX #15), computed with PDServe's own Unicode 9.0
/// tables so the result equals the `tokenizers` library's code point for code point.
///
/// Why not Foundation: on this toolchain its composition is wrong (a Hangul LV syllable
/// followed by a trailing jamo is left uncomposed; a supplementary-plane character followed
/// by a combining mark is composed as the BMP character with the same low 16 bits), and its
/// newer Unicode reorders and composes marks that `tokenizers` treats as unassigned.
enum UnicodeNormalization {
    enum Form: Sendable {
        case nfc, nfd, nfkc, nfkd

        var compatibility: Bool { self == .nfkc || self == .nfkd }
        var composes: Bool { self == .nfc || self == .nfkc }
    }

    static func normalize(_ text: String, _ form: Form) -> String {
        // ASCII is invariant under every form; most prompts take this path.
        if text.utf8.allSatisfy({ $0 < 0x80 }) { return text }
        let data = NormalizationData.shared
        var scalars = decompose(text, compatibility: form.compatibility, data: data)
        if form.composes { compose(&scalars, data: data) }
        var out = String.UnicodeScalarView()
        out.append(contentsOf: scalars.lazy.compactMap(Unicode.Scalar.init))
        return String(out)
    }

    /// Removes every code point of general category Mark (the StripAccents normalizer).
    static func removingMarks(_ text: String) -> String {
        let marks = NormalizationData.shared.marks
        var out = String.UnicodeScalarView()
        out.append(contentsOf: text.unicodeScalars.lazy.filter { !marks.contains($0.value) })
        return String(out)
    }

    // MARK: Decomposition and canonical ordering

    private static func decompose(_ text: String, compatibility: Bool, data: NormalizationData) -> [UInt32] {
        var out: [UInt32] = []
        out.reserveCapacity(text.unicodeScalars.count)
        for scalar in text.unicodeScalars {
            let cp = scalar.value
            if Hangul.isSyllable(cp) {
                Hangul.decompose(cp, into: &out)
            } else if let mapping = (compatibility ? data.compatibility[cp] : nil) ?? data.canonical[cp] {
                for part in mapping { appendOrdered(part, to: &out, data: data) }
            } else {
                appendOrdered(cp, to: &out, data: data)
            }
        }
        return out
    }

    /// Appends `cp` and moves it before the preceding marks of a higher combining class: the
    /// canonical ordering algorithm as a stable insertion sort within each run of non-starters.
    private static func appendOrdered(_ cp: UInt32, to out: inout [UInt32], data: NormalizationData) {
        let cls = data.combiningClass(of: cp)
        out.append(cp)
        guard cls != 0 else { return }
        var i = out.count - 1
        while i > 0 {
            let previous = data.combiningClass(of: out[i - 1])
            guard previous > cls else { break }
            out.swapAt(i, i - 1)
            i -= 1
        }
    }

    // MARK: Canonical composition

    /// Composes each character with the last starter before it unless a character between
    /// them blocks it (a starter, or a mark of the same or a higher class).
    private static func compose(_ scalars: inout [UInt32], data: NormalizationData) {
        guard scalars.count > 1 else { return }
        var out: [UInt32] = []
        out.reserveCapacity(scalars.count)
        var starter: Int? = nil
        var lastClass: UInt8 = 0
        for cp in scalars {
            let cls = data.combiningClass(of: cp)
            if let s = starter {
                let adjacent = s == out.count - 1
                if adjacent || (lastClass != 0 && lastClass < cls),
                   let composite = composite(out[s], cp, data: data) {
                    out[s] = composite
                    continue
                }
            }
            if cls == 0 { starter = out.count }
            lastClass = cls
            out.append(cp)
        }
        scalars = out
    }

    private static func composite(_ first: UInt32, _ second: UInt32, data: NormalizationData) -> UInt32? {
        Hangul.compose(first, second) ?? data.composition[UInt64(first) << 32 | UInt64(second)]
    }
}

/// Hangul syllables decompose and compose by arithmetic (Unicode §3.12), not by table.
private enum Hangul {
    static let sBase: UInt32 = 0xAC00, lBase: UInt32 = 0x1100, vBase: UInt32 = 0x1161, tBase: UInt32 = 0x11A7
    static let lCount: UInt32 = 19, vCount: UInt32 = 21, tCount: UInt32 = 28
    static let sCount = lCount * vCount * tCount

    static func isSyllable(_ cp: UInt32) -> Bool { cp >= sBase && cp < sBase + sCount }

    static func decompose(_ cp: UInt32, into out: inout [UInt32]) {
        let index = cp - sBase
        out.append(lBase + index / (vCount * tCount))
        out.append(vBase + (index % (vCount * tCount)) / tCount)
        let t = index % tCount
        if t != 0 { out.append(tBase + t) }
    }

    static func compose(_ first: UInt32, _ second: UInt32) -> UInt32? {
        if first >= lBase, first < lBase + lCount, second >= vBase, second < vBase + vCount {
            return sBase + ((first - lBase) * vCount + (second - vBase)) * tCount
        }
        if isSyllable(first), (first - sBase) % tCount == 0, second > tBase, second < tBase + tCount {
            return first + (second - tBase)
        }
        return nil
    }
}
