import Foundation
import Testing
@testable import ChatTemplates

@Suite struct TemplateValueTests {
    @Test func jsonTextKeepsKeyOrderAndTypes() throws {
        let v = try TemplateValue(jsonString: #"{"z": 1, "a": [true, null, 2.5, -3, 1e2], "m": {"y": "\u00e9\ud83c\udf0d\n"}}"#)
        guard case .object(let dict) = v else { Issue.record("not an object"); return }
        #expect(dict.keys == ["z", "a", "m"])
        #expect(dict["a"] == [true, nil, 2.5, -3, 100.0])
        #expect(v["m"]?["y"] == "é🌍\n")
        let rendered = try ChatTemplate(source: "{{ v|tojson }}").render(context: ["v": v])
        #expect(rendered == #"{"z": 1, "a": [true, null, 2.5, -3, 100.0], "m": {"y": "é🌍\n"}}"#)
    }

    @Test func foundationObjectsConvert() throws {
        let object = try JSONSerialization.jsonObject(with: Data(#"{"b": true, "i": 3, "d": 1.5, "s": "x", "n": null, "l": [false, 0]}"#.utf8))
        let v = try TemplateValue(jsonObject: object)
        #expect(v["b"] == .bool(true))
        #expect(v["i"] == .int(3))
        #expect(v["d"] == .double(1.5))
        #expect(v["s"] == "x")
        #expect(v["n"] == .null)
        #expect(v["l"] == [false, 0])
    }

    @Test func literalsBuildValues() {
        let v: TemplateValue = ["role": "user", "content": [["type": "text", "text": "hi"]], "n": 1, "ok": true, "x": nil]
        guard case .object(let dict) = v else { Issue.record("not an object"); return }
        #expect(dict.keys == ["role", "content", "n", "ok", "x"])
        #expect(TemplateValue.object([("a", 1)]) == ["a": 1])
    }
}
