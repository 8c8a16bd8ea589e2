import Testing
@testable import ChatTemplates

/// Unsupported or broken templates must fail loudly, at parse time where Jinja would, with a
/// position and a message a template author can act on.
@Suite struct ErrorTests {
    private func parseError(_ source: String) -> ChatTemplateError? {
        do {
            _ = try ChatTemplate(source: source)
            return nil
        } catch let e as ChatTemplateError {
            return e
        } catch {
            return nil
        }
    }

    private func renderError(_ source: String, _ context: [String: TemplateValue] = [:]) -> ChatTemplateError? {
        do {
            _ = try ChatTemplate(source: source).render(context: context)
            return nil
        } catch let e as ChatTemplateError {
            return e
        } catch {
            return nil
        }
    }

    @Test func unknownTagNamesLineAndColumn() throws {
        let e = try #require(parseError("Hello\n  {{ x }} {% frobnicate x %}"))
        #expect(e.kind == .syntax)
        #expect(e.line == 2)
        #expect(e.column == 14)
        #expect(e.message.contains("unknown tag 'frobnicate'"))
        #expect(e.description.hasPrefix("line 2, column 14: "))
    }

    @Test func unsupportedJinjaTagsAreNamed() throws {
        for tag in ["include 'x.j2'", "extends 'base'", "import 'm' as m", "block body", "do xs.append(1)"] {
            let e = try #require(parseError("{% \(tag) %}"), "\(tag)")
            #expect(e.kind == .syntax)
            #expect(e.message.contains("not supported"), "\(e)")
        }
    }

    @Test func raiseExceptionMessageSurfacesVerbatim() throws {
        let e = try #require(renderError("{% if messages|length == 0 %}{{ raise_exception('No messages: ' ~ 0) }}{% endif %}", ["messages": []]))
        #expect(e.kind == .raised)
        #expect(e.message == "No messages: 0")
        #expect(e.description == "No messages: 0")
    }

    @Test func unknownFilterAndTestFailAtParseTime() throws {
        let f = try #require(parseError("{% if x %}\n{{ x | frobnicate }}{% endif %}"))
        #expect(f.kind == .syntax)
        #expect(f.line == 2)
        #expect(f.message == "unknown filter 'frobnicate'")
        let t = try #require(parseError("{{ x is frobnicated }}"))
        #expect(t.message == "unknown test 'frobnicated'")
        // Filters inside a for-loop filter and in a set block are checked too.
        #expect(parseError("{% set x | nope %}a{% endset %}")?.message == "unknown filter 'nope'")
    }

    @Test func unterminatedConstructs() throws {
        let cases: [(String, String)] = [
            ("{{ x ", "expected '}}'"),
            ("{% if x ", "expected '%}'"),
            ("{# never closed", "unterminated comment"),
            ("{{ 'abc }}", "unterminated string"),
            ("{% raw %}abc", "unterminated raw block"),
            ("{% for x in xs %}{{ x }}", "needs '{% else %}' or '{% endfor %}'"),
            ("line1\n{% if a %}x{% elif b %}y", "'if' tag opened at line 2, column 4"),
            ("{% macro m() %}body", "'{% endmacro %}'"),
            ("{{ (1 + 2 }}", "unexpected '}', expected ')'"),
            ("{{ [1, 2 }}", "unexpected '}', expected ']'"),
            ("{{ (1 + 2 %}", "expected ')'"),
            ("{{ x ) }}", "expected '}}' to end the expression"),
            ("{{ {'a' 1} }}", "expected ':'"),
        ]
        for (source, fragment) in cases {
            let e = try #require(parseError(source), "\(source)")
            #expect(e.kind == .syntax, "\(source)")
            #expect(e.line != nil, "\(source)")
            #expect(e.message.contains(fragment), "\(source): \(e.message)")
        }
    }

    @Test func misplacedTags() throws {
        #expect(parseError("{% for x in xs %}{% endif %}") != nil)
        #expect(parseError("{% endfor %}")?.message.contains("unknown tag 'endfor'") == true)
        #expect(parseError("{% break %}")?.message.contains("outside of a for loop") == true)
        #expect(parseError("{% for x in xs recursive %}{% endfor %}")?.message.contains("recursive") == true)
        #expect(parseError("{{ }}") != nil)
        #expect(parseError("{% %}") != nil)
        #expect(parseError("{{ x is }}") != nil)
        #expect(parseError("{{ f(*args) }}")?.message.contains("not supported") == true)
    }

    @Test func runtimeErrorsAreTyped() throws {
        #expect(renderError("{{ missing.attr }}")?.kind == .undefined)
        #expect(renderError("{{ missing.attr }}")?.message == "'missing' is undefined")
        #expect(renderError("{{ 'a' + 1 }}")?.kind == .type)
        #expect(renderError("{{ 1 / 0 }}")?.kind == .type)
        #expect(renderError("{{ none|length }}")?.kind == .type)
        #expect(renderError("{{ nope() }}")?.kind == .undefined)
        #expect(renderError("{{ x.append(1) }}", ["x": []])?.kind == .type)
        #expect(renderError("{{ 1 < 'a' }}")?.kind == .type)
        #expect(renderError("{{ {}|tojson if false else nope|tojson }}")?.kind == .type)
        let located = try #require(renderError("ok\n  {{ 'a' + 1 }}"))
        #expect(located.line == 2)
    }

    @Test func invalidJSONInputIsReported() {
        #expect(throws: ChatTemplateError.self) { try TemplateValue(jsonString: "{\"a\": }") }
        #expect(throws: ChatTemplateError.self) { try TemplateValue(jsonString: String(repeating: "[", count: 100_000)) }
    }
}
