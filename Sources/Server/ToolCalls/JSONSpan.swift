import ByteExactJSON
import Foundation

/// Finds JSON values inside model text (Python's `raw_decode`): where an
/// object or array that starts the text ends, honouring strings and escapes.
enum JSONSpan {
    /// The text, less surrounding whitespace, as exactly one JSON value.
    static func value(_ text: Substring) -> JSONValue? {
        try? JSONParser.parse(Data(text.trimmingCharacters(in: .whitespacesAndNewlines).utf8))
    }

    /// The object or array that starts the text (after whitespace), and where it ends.
    static func prefixValue(_ text: Substring) -> (JSONValue, String.Index)? {
        let utf8 = text.utf8
        guard let start = utf8.firstIndex(where: { !Self.isSpace($0) }), utf8[start] == UInt8(ascii: "{") || utf8[start] == UInt8(ascii: "[") else {
            return nil
        }
        var depth = 0, inString = false, escaped = false
        var index = start
        while index < utf8.endIndex {
            let byte = utf8[index]
            index = utf8.index(after: index)
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
            } else if byte == UInt8(ascii: "\"") {
                inString = true
            } else if byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") {
                depth += 1
            } else if byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]") {
                depth -= 1
                if depth == 0 {
                    guard let value = try? JSONParser.parse(Data(text[start..<index].utf8)) else { return nil }
                    return (value, index)
                }
            }
        }
        return nil
    }

    /// Objects one after another, apart by `separator` and whitespace; nil unless that is all the text holds.
    static func sequence(_ text: Substring, separator: Character) -> [JSONValue]? {
        var rest = text
        var values: [JSONValue] = []
        while true {
            rest = rest.drop { $0.isWhitespace || $0 == separator }
            if rest.isEmpty { return values }
            guard let (value, end) = prefixValue(rest), value.objectMembers != nil else { return nil }
            values.append(value)
            rest = rest[end...]
        }
    }

    private static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 }
}
