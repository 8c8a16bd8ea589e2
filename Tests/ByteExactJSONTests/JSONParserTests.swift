import ByteExactJSON
import Foundation
import Testing

/// The byte-exact JSON parser used for tokenizer files and request bodies.
@Suite struct JSONParserTests {
    @Test func parsesValuesAndEscapes() throws {
        let v = try JSONParser.parse(Data(#"{"s": "a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00", "i": -12, "d": 1.5e2, "t": true, "f": false, "n": null, "a": [1, [2], {}]}"#.utf8))
        #expect(v["s"]?.stringValue == "a\"\\/\u{8}\u{C}\n\r\t\u{E9}😀")
        #expect(v["i"]?.intValue == -12)
        #expect(v["d"]?.doubleValue == 150)
        #expect(v["t"]?.boolValue == true)
        #expect(v["f"]?.boolValue == false)
        #expect(v["n"]?.isNull == true)
        #expect(v["a"]?.arrayValue?.count == 3)
        #expect(v["missing"] == nil)
    }

    @Test func loneSurrogatesBecomeReplacementCharacters() throws {
        let v = try JSONParser.parse(Data(#"["\ud800x", "\udc00"]"#.utf8))
        #expect(v.arrayValue?.map { $0.stringValue } == ["\u{FFFD}x", "\u{FFFD}"])
    }

    @Test func keepsCanonicallyEquivalentKeysApart() throws {
        let v = try JSONParser.parse(Data("{\"\u{E9}\": 1, \"e\u{301}\": 2}".utf8))
        let members = try #require(v.objectMembers)
        #expect(members.keys.count == 2)
        #expect(members.values.compactMap(\.intValue) == [1, 2])
    }

    @Test func rejectsMalformedInput() {
        for text in ["", "{", "[1,]", "{\"a\" 1}", "\"abc", "tru", "[1] 2", "{\"a\": 01x}", "\"\\q\"", "\"a\u{1}\""] {
            #expect(throws: JSONParser.Failure.self, "\(text.debugDescription)") { try JSONParser.parse(Data(text.utf8)) }
        }
        let deep = String(repeating: "[", count: 10_000)
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(Data(deep.utf8)) }
    }

    /// corelibs' JSONSerialization drops a raw U+FEFF at the start of a string value; here it
    /// is text like any other. Only a byte order mark before the document is skipped.
    @Test func byteOrderMarkInsideStringsIsKept() throws {
        let v = try JSONParser.parse(Data("\u{FEFF}{\"p\": \"\u{FEFF}hi\", \"q\": [\"\u{FEFF}\"]}".utf8))
        #expect(v["p"]?.stringValue?.unicodeScalars.map(\.value) == [0xFEFF, 0x68, 0x69])
        let object = try #require(v.foundationObject as? [String: Any])
        #expect((object["p"] as? String)?.unicodeScalars.first == "\u{FEFF}")
        #expect((object["q"] as? [Any])?.first as? String == "\u{FEFF}")
    }

    @Test func invalidUTF8AndNumbersOutsideTheGrammarAreErrors() {
        for bytes: [UInt8] in [[0x22, 0xE2, 0x60, 0x22], [0x22, 0xFF, 0x22], [0x5B, 0x22, 0xC3, 0x22, 0x5D]] {
            #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(Data(bytes)) }
        }
        for text in ["01", "-", "1.", ".5", "+1", "1e", "1e+", "-01", "1e999", "0x10", "1.5.2"] {
            #expect(throws: JSONParser.Failure.self, "\(text)") { try JSONParser.parse(Data(text.utf8)) }
        }
        for (text, value) in [("0", 0.0), ("-0.5", -0.5), ("1E+2", 100), ("12345678901234567890", 1.2345678901234567e19)] {
            #expect((try? JSONParser.parse(Data(text.utf8)))?.doubleValue == value, "\(text)")
        }
    }

    /// The shapes JSONSerialization gives, so code written against them keeps working.
    @Test func foundationObjectHasJSONSerializationShapes() throws {
        let object = try #require(JSONParser.foundationObject(from: Data(#"{"b": true, "i": 3, "d": 2.5, "n": null, "k": 1, "k": 2}"#.utf8)) as? [String: Any])
        let b = try #require(object["b"] as? NSNumber)
        #expect(String(cString: b.objCType) == "c")
        #expect(object["i"] as? Int == 3)
        #expect(object["d"] as? Double == 2.5)
        #expect(object["n"] is NSNull)
        #expect(object["k"] as? Int == 2)
        #expect(JSONParser.foundationObject(from: Data("{".utf8)) == nil)
    }
}
