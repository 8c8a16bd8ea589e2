/// GPT-2's reversible byte ↔ Unicode mapping.
///
/// Byte-level BPE vocabularies are written in visible characters: printable Latin-1 bytes
/// stand for themselves and the others (controls, space, …) are shifted to U+0100 and up,
/// in byte order. So a space is stored as "Ġ" (U+0120) and a newline as "Ċ" (U+010A).
public enum ByteLevelMapping {
    /// The scalar that represents each byte value.
    public static let byteToScalar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            let printable = (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
            if printable {
                table[b] = Unicode.Scalar(UInt8(b))
            } else {
                table[b] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// Inverse of `byteToScalar`, indexed by scalar value (all mapped scalars are < 0x144).
    static let scalarToByte: [Int16] = {
        var table = [Int16](repeating: -1, count: 0x200)
        for (b, s) in byteToScalar.enumerated() { table[Int(s.value)] = Int16(b) }
        return table
    }()

    /// The byte a mapped scalar stands for, or nil for scalars outside the table.
    @inline(__always)
    static func byte(for scalar: Unicode.Scalar) -> UInt8? {
        let v = Int(scalar.value)
        guard v < scalarToByte.count else { return nil }
        let b = scalarToByte[v]
        return b < 0 ? nil : UInt8(b)
    }

    /// Rewrites every UTF-8 byte of `text` as its mapped scalar.
    static func encode(_ text: String) -> String {
        var scalars = String.UnicodeScalarView()
        for b in text.utf8 { scalars.append(byteToScalar[Int(b)]) }
        return String(scalars)
    }

    /// Appends the bytes that `token` stands for. Scalars outside the table (e.g. in
    /// added tokens) contribute their own UTF-8 bytes, as the reference implementation does.
    static func appendBytes(of token: String, to bytes: inout [UInt8]) {
        for scalar in token.unicodeScalars {
            if let b = byte(for: scalar) {
                bytes.append(b)
            } else {
                bytes.append(contentsOf: String(scalar).utf8)
            }
        }
    }
}
