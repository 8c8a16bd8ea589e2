import ByteExactJSON
import Foundation
@testable import Grammar
import Testing

func schema(_ text: String) throws -> RegexNode {
    try JSONSchemaTranslator.translate(try JSONParser.parse(Data(text.utf8)))
}

/// JSON Schema becomes the language of compact JSON texts valid for it.
struct JSONSchemaTests {
    @Test func objectsKeepRequiredPropertiesAndMayDropOptionalOnes() throws {
        let node = try schema(#"{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string"},"c":{"type":"boolean"}},"required":["b"]}"#)
        for text in [#"{"b":"x"}"#, #"{"a":1,"b":"x"}"#, #"{"b":"x","c":true}"#, #"{ "a": -5, "b": "", "c": false }"#] {
            #expect(try accepts(node, text), "\(text)")
        }
        for text in [#"{}"#, #"{"a":1}"#, #"{"b":"x",}"#, #"{"b":1}"#, #"{"c":true,"b":"x"}"#, #"{"b":"x","d":1}"#] {
            #expect(try !accepts(node, text), "\(text)")
        }
    }

    @Test func allOptionalPropertiesNeedCommasOnlyBetween() throws {
        let node = try schema(#"{"properties":{"a":{"const":1},"b":{"const":2}}}"#)
        for text in ["{}", #"{"a":1}"#, #"{"b":2}"#, #"{"a":1,"b":2}"#] { #expect(try accepts(node, text), "\(text)") }
        for text in [#"{,"b":2}"#, #"{"a":1,}"#, #"{"b":2,"a":1}"#] { #expect(try !accepts(node, text), "\(text)") }
    }

    @Test func scalarsEnumsAndStrings() throws {
        #expect(try accepts(schema(#"{"enum":["red","green",3,null]}"#), "3"))
        #expect(try !accepts(schema(#"{"enum":["red","green"]}"#), #""blue""#))
        #expect(try accepts(schema(#"{"type":"string","minLength":2,"maxLength":3}"#), #""ab\n""#))
        #expect(try !accepts(schema(#"{"type":"string","maxLength":3}"#), #""abcd""#))
        #expect(try accepts(schema(#"{"type":"string","pattern":"^[A-Z]{2}\\d$"}"#), #""AB7""#))
        #expect(try !accepts(schema(#"{"type":"string","pattern":"[a\"]+"}"#), #""a"a""#))
        #expect(try accepts(schema(#"{"type":"number"}"#), "-12.5e+3"))
        #expect(try !accepts(schema(#"{"type":"number"}"#), "01"))
        #expect(try accepts(schema(#"{"type":"integer","minimum":1,"maximum":12}"#), "12"))
        #expect(try !accepts(schema(#"{"type":"integer","exclusiveMaximum":12}"#), "12"))
        #expect(try accepts(schema(#"{"type":["string","null"]}"#), "null"))
        #expect(try accepts(schema(#"{"type":"string","format":"date"}"#), #""2026-12-04""#))
        #expect(try !accepts(schema(#"{"type":"string","format":"uuid"}"#), #""nope""#))
        #expect(try accepts(schema(#"{"type":"string"}"#), #""grüße 🎉 \u00e9""#))
    }

    @Test func arraysCountTheirItems() throws {
        let node = try schema(#"{"type":"array","items":{"type":"integer"},"minItems":1,"maxItems":3}"#)
        for text in ["[1]", "[1,2]", "[1, 2, 3]"] { #expect(try accepts(node, text), "\(text)") }
        for text in ["[]", "[1,2,3,4]", "[1,]", #"["a"]"#] { #expect(try !accepts(node, text), "\(text)") }
        #expect(try accepts(schema(#"{"type":"array"}"#), #"[1,"x",{"k":[true]}]"#))
    }

    @Test func referencesAndCombinators() throws {
        let tree = try schema(##"{"$ref":"#/$defs/node","$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},"kids":{"type":"array","items":{"$ref":"#/$defs/node"}}},"required":["v"]}}}"##)
        #expect(try accepts(tree, #"{"v":1,"kids":[{"v":2,"kids":[]},{"v":3}]}"#))
        #expect(try !accepts(tree, #"{"kids":[]}"#))
        let either = try schema(#"{"anyOf":[{"type":"integer"},{"type":"object","properties":{"x":{"type":"null"}},"required":["x"]}]}"#)
        #expect(try accepts(either, #"{"x":null}"#))
        #expect(try accepts(either, "42"))
        #expect(try !accepts(either, #""42""#))
    }

    @Test func freeFormObjectsTakeAnyJSON() throws {
        let node = JSONSchemaTranslator.anyObject(depth: JSONSchemaTranslator.anyValueDepth, values: nil)
        #expect(try accepts(node, #"{"a":[1,{"b":null}],"c":"d"}"#))
        #expect(try !accepts(node, "[1]"))
        #expect(try !accepts(node, #"{"a":}"#))
    }

    /// Hostile shapes end in a clear error, not in memory or stack
    /// exhaustion: references that multiply, nesting as deep as JSON allows,
    /// repetitions whose automaton would be too large.
    @Test func hostileSchemasAreRefused() throws {
        let chain = (0..<24).map { ##""d\##($0)":{"anyOf":[{"$ref":"#/$defs/d\##($0 + 1)"},{"$ref":"#/$defs/d\##($0 + 1)"}]}"## }.joined(separator: ",")
        let multiplying = ##"{"$ref":"#/$defs/d0","$defs":{"## + chain + ##","d24":{"type":"integer"}}}"##
        #expect { try schema(multiplying) } throws: { ($0 as? GrammarError)?.message.contains("expand to more than") == true }
        func nested(_ levels: Int) -> String {
            String(repeating: #"{"type":"array","items":"#, count: levels) + "{}" + String(repeating: "}", count: levels)
        }
        #expect(try accepts(schema(nested(60)), String(repeating: "[", count: 60) + "1" + String(repeating: "]", count: 60)))
        #expect { try schema(nested(250)) } throws: { ($0 as? GrammarError)?.message.contains("nests deeper than 64") == true }
        #expect { try ByteNFA(try RegexParser.parse("(a{1000}){1000}")) } throws: { ($0 as? GrammarError)?.message.contains("too large") == true }
    }

    @Test(arguments: [
        (#"{"type":"string","minLength":"x"}"#, "'minLength' must be"), (#"{"not":{}}"#, "'not' is not supported"),
        (#"{"type":"number","minimum":0}"#, "bounds on 'number'"), (#"{"$ref":"http://x"}"#, "local"),
        (##"{"$ref":"#/$defs/missing"}"##, "points at nothing"), (##"{"type":"string","format":"email"}"##, "format 'email'"),
        (#"{"type":"array","uniqueItems":true}"#, "uniqueItems"), (#"{"type":"wat"}"#, "unknown type"),
        (#"{"type":"string","pattern":"(a"}"#, "'pattern'"), (#"{"allOf":[{},{}]}"#, "allOf"), ("3", "object or a boolean"),
    ])
    func refusesWhatItCannotHonour(text: String, message: String) {
        #expect { try schema(text) } throws: { ($0 as? GrammarError)?.message.contains(message) == true }
    }
}
