/// The Unicode properties normalization needs, parsed once from the generated
/// `UnicodeNormalizationTables` (Unicode 9.0, the version the `tokenizers` library uses).
struct NormalizationData: Sendable {
    static let shared = NormalizationData()

    /// Canonical combining class of each code point whose class is not 0.
    let combiningClass: [UInt32: UInt8]
    /// Code points of general category Mark.
    let marks: Set<UInt32>
    /// Full canonical decomposition of each decomposable code point (Hangul excluded).
    let canonical: [UInt32: [UInt32]]
    /// Full compatibility decomposition where it differs from the canonical one.
    let compatibility: [UInt32: [UInt32]]
    /// Primary composite of each (first, second) pair, keyed `first << 32 | second`.
    let composition: [UInt64: UInt32]

    private init() {
        var classes: [UInt32: UInt8] = [:]
        Self.parseRuns(UnicodeNormalizationTables.combiningClasses) { cp, value in classes[cp] = UInt8(value) }
        combiningClass = classes
        var marks = Set<UInt32>()
        Self.parseRuns(UnicodeNormalizationTables.marks) { cp, _ in marks.insert(cp) }
        self.marks = marks
        canonical = Self.parseMap(UnicodeNormalizationTables.canonicalDecompositions)
        compatibility = Self.parseMap(UnicodeNormalizationTables.compatibilityDecompositions)
        var composition: [UInt64: UInt32] = [:]
        for (composite, pair) in Self.parseMap(UnicodeNormalizationTables.compositions) where pair.count == 2 {
            composition[UInt64(pair[0]) << 32 | UInt64(pair[1])] = composite
        }
        self.composition = composition
    }

    func combiningClass(of scalar: UInt32) -> UInt8 { combiningClass[scalar] ?? 0 }

    // MARK: Table text

    /// Entries of `key:v1 v2 …` separated by `;`, hex; line breaks are layout only.
    private static func entries(_ text: String) -> [(key: Substring, values: [Substring])] {
        var flat = String.UnicodeScalarView()
        flat.append(contentsOf: text.unicodeScalars.lazy.filter { $0 != "\n" })
        return String(flat).split(separator: ";").compactMap { entry in
            guard let colon = entry.firstIndex(of: ":") else { return nil }
            return (entry[..<colon], entry[entry.index(after: colon)...].split(separator: " "))
        }
    }

    private static func hex(_ s: Substring) -> UInt32 { UInt32(s, radix: 16) ?? 0 }

    /// `first[-last]:value` entries, calling `body` for every code point of each run.
    private static func parseRuns(_ text: String, _ body: (UInt32, UInt32) -> Void) {
        for (key, values) in entries(text) {
            let bounds = key.split(separator: "-")
            let first = hex(bounds[0])
            let last = bounds.count > 1 ? hex(bounds[1]) : first
            let value = values.first.map(hex) ?? 0
            for cp in first...last { body(cp, value) }
        }
    }

    private static func parseMap(_ text: String) -> [UInt32: [UInt32]] {
        var map: [UInt32: [UInt32]] = [:]
        for (key, values) in entries(text) { map[hex(key)] = values.map(hex) }
        return map
    }
}
