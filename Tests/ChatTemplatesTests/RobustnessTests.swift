import Foundation
import Testing
@testable import ChatTemplates

/// Hostile or degenerate templates and inputs must end in an error or a bounded render, never a crash.
@Suite struct RobustnessTests {
    @Test func deeplyNestedExpressionsAreRejectedNotOverflowed() {
        let parens = "{{ " + String(repeating: "(", count: 100_000) + "1" + String(repeating: ")", count: 100_000) + " }}"
        #expect(throws: ChatTemplateError.self) { try ChatTemplate(source: parens) }
        let lists = "{{ " + String(repeating: "[", count: 50_000) + String(repeating: "]", count: 50_000) + " }}"
        #expect(throws: ChatTemplateError.self) { try ChatTemplate(source: lists) }
        let nots = "{{ " + String(repeating: "not ", count: 50_000) + "x }}"
        #expect(throws: ChatTemplateError.self) { try ChatTemplate(source: nots) }
        let minus = "{{ " + String(repeating: "-", count: 50_000) + "1 }}"
        #expect(throws: ChatTemplateError.self) { try ChatTemplate(source: minus) }
    }

    @Test func deeplyNestedBlocksAreRejected() {
        let ifs = String(repeating: "{% if true %}", count: 20_000) + "x" + String(repeating: "{% endif %}", count: 20_000)
        #expect(throws: ChatTemplateError.self) { try ChatTemplate(source: ifs) }
    }

    @Test func reasonableNestingWorks() throws {
        let ifs = String(repeating: "{% if true %}", count: 60) + "deep" + String(repeating: "{% endif %}", count: 60)
        #expect(try ChatTemplate(source: ifs).render(context: [:]) == "deep")
        let parens = "{{ " + String(repeating: "(", count: 50) + "1 + 1" + String(repeating: ")", count: 50) + " }}"
        #expect(try ChatTemplate(source: parens).render(context: [:]) == "2")
    }

    @Test func loopOverTenThousandItems() throws {
        let items = TemplateValue.array((0..<10_000).map { .object([("role", "user"), ("content", .string("m\($0)"))]) })
        let template = try ChatTemplate(source: "{% for m in messages %}{{ loop.index }}:{{ m.content }}{% if not loop.last %},{% endif %}{% endfor %}")
        let start = Date()
        let out = try template.render(context: ["messages": items])
        #expect(out.hasPrefix("1:m0,2:m1,"))
        #expect(out.hasSuffix("10000:m9999"))
        #expect(Date().timeIntervalSince(start) < 10)
    }

    @Test func runawayLoopsHitTheIterationBudget() throws {
        var template = try ChatTemplate(source: "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}")
        template.limits.maxLoopIterations = 200_000
        #expect { try template.render(context: [:]) } throws: { ($0 as? ChatTemplateError)?.kind == .limit }
        let huge = try ChatTemplate(source: "{{ range(1000000000000)|length }}")
        #expect { try huge.render(context: [:]) } throws: { ($0 as? ChatTemplateError)?.kind == .limit }
    }

    @Test func outputAndRepetitionAreBounded() throws {
        var template = try ChatTemplate(source: "{% for i in range(1000) %}{{ 'abcdefghij' * 100 }}{% endfor %}")
        template.limits.maxOutputBytes = 100_000
        #expect { try template.render(context: [:]) } throws: { ($0 as? ChatTemplateError)?.kind == .limit }
        let repeatHuge = try ChatTemplate(source: "{{ 'a' * 1000000000000 }}")
        #expect { try repeatHuge.render(context: [:]) } throws: { ($0 as? ChatTemplateError)?.kind == .limit }
        let listHuge = try ChatTemplate(source: "{{ ([1] * 1000000000000)|length }}")
        #expect { try listHuge.render(context: [:]) } throws: { ($0 as? ChatTemplateError)?.kind == .limit }
    }

    @Test func recursiveMacrosHitTheCallDepth() throws {
        let template = try ChatTemplate(source: "{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}")
        #expect { try template.render(context: [:]) } throws: { ($0 as? ChatTemplateError)?.kind == .limit }
        let bounded = try ChatTemplate(source: "{% macro r(n) %}{% if n > 0 %}{{ n }}{{ r(n - 1) }}{% endif %}{% endmacro %}{{ r(5) }}")
        #expect(try bounded.render(context: [:]) == "54321")
    }

    @Test func integerOverflowIsAnErrorNotATrap() throws {
        for source in ["{{ 2 ** 200 }}", "{{ 9223372036854775807 + 1 }}", "{{ -9223372036854775807 - 2 }}",
                       "{{ 4611686018427387904 * 4 }}", "{{ x // -1 }}", "{{ -x }}", "{{ x|abs }}"] {
            let template = try ChatTemplate(source: source)
            #expect(throws: ChatTemplateError.self, "\(source)") {
                try template.render(context: ["x": .int(Int.min)])
            }
        }
        #expect(throws: ChatTemplateError.self) { try ChatTemplate(source: "{{ 99999999999999999999 }}") }
        #expect(try ChatTemplate(source: "{{ x % -1 }}|{{ 1e308 * 10 }}|{{ 1e400|int }}").render(context: ["x": .int(Int.min)]) == "0|inf|0")
        #expect(try ChatTemplate(source: "{{ xs[::9223372036854775807] }}{{ xs[-9223372036854775807:] }}").render(context: ["xs": [1, 2]]) == "[1][1, 2]")
        #expect(throws: ChatTemplateError.self) { try ChatTemplate(source: "{{ xs[::0] }}").render(context: ["xs": [1]]) }
    }

    /// Random token soup: whatever it is, parsing and rendering must return or throw.
    @Test func fuzzedTemplatesNeverCrash() {
        let pieces = ["{{", "}}", "{%", "%}", "{#", "#}", "-", "+", "if", "for", "in", "endif", "endfor", "else", "set",
                      "x", "messages", "loop", ".", "[", "]", "(", ")", "'s'", "\"", "\\", "1", "0", "|", "length", "trim",
                      "is", "not", "defined", "none", "~", "*", "**", "//", ",", ":", "=", "==", "macro", "endmacro",
                      "call", "raw", "endraw", " ", "\n", "namespace", "ns", "and", "or", "tojson", "{", "}", "é🌍"]
        var rng = SplitMix64(seed: 0xC0FFEE)
        var parsed = 0
        for _ in 0..<3_000 {
            let count = Int(rng.next() % 40) + 1
            var source = ""
            for _ in 0..<count { source += pieces[Int(rng.next() % UInt64(pieces.count))] + (rng.next() % 2 == 0 ? " " : "") }
            guard var template = try? ChatTemplate(source: source) else { continue }
            parsed += 1
            template.limits.maxLoopIterations = 10_000
            _ = try? template.render(context: ["messages": [["role": "user", "content": "hi"]], "x": [1, 2, 3]])
        }
        #expect(parsed > 0)
    }

    /// Control characters, combining marks and multi-scalar emoji: lengths count code points and
    /// tojson escapes only what Python escapes (expected strings taken from jinja2).
    @Test func unusualTextRendersLikePython() throws {
        let template = try ChatTemplate(source: "{% for m in messages %}{{ m.content }}|{{ m.content|tojson }}|{{ m.content|length }}\n{% endfor %}")
        let out = try template.render(context: ["messages": [
            ["content": "\u{0}\u{1}\u{7F}\u{FEFF}"],
            ["content": "e\u{301} vs \u{E9}, \u{1F1EB}\u{1F1F7}, \u{1F469}\u{200D}\u{1F469}\u{200D}\u{1F467}"],
            ["content": .array([])],
        ]])
        let expected = "\u{0}\u{1}\u{7F}\u{FEFF}|\"\\u0000\\u0001\u{7F}\u{FEFF}\"|4\n"
            + "e\u{301} vs \u{E9}, \u{1F1EB}\u{1F1F7}, \u{1F469}\u{200D}\u{1F469}\u{200D}\u{1F467}|"
            + "\"e\u{301} vs \u{E9}, \u{1F1EB}\u{1F1F7}, \u{1F469}\u{200D}\u{1F469}\u{200D}\u{1F467}\"|18\n"
            + "[]|[]|0\n"
        #expect(out.unicodeScalars.elementsEqual(expected.unicodeScalars))
        #expect(throws: ChatTemplateError.self) { try template.render(context: ["messages": [["content": .null]]]) }
    }
}

/// Deterministic generator so fuzz failures reproduce.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
