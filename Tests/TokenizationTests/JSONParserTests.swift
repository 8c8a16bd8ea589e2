import Foundation
import Testing
@testable import Tokenization

/// The byte-exact JSON parser used for tokenizer files.
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
}
