import Testing
@testable import ChatTemplates

/// Every real model template, over every fixture conversation, must render byte-for-byte what
/// jinja2 (configured as transformers configures it) rendered, or fail where jinja2 failed.
@Suite struct ReferenceTemplateTests {
    @Test(arguments: Fixtures.templateNames)
    func rendersLikeJinja2(_ name: String) throws {
        let template = try ChatTemplate(source: try Fixtures.source(name))
        let cases = Fixtures.cases(named: "cases").filter { $0["template"]?.stringValue == name }
        #expect(!cases.isEmpty)
        var failures: [String] = []
        for c in cases {
            let label = "\(name)/\(c["conversation"]?.stringValue ?? "?")/\(c["variant"]?.stringValue ?? "?")"
                + "/agp=\(c["add_generation_prompt"] == .bool(true))"
            if let failure = Fixtures.check(template, c, label: label) { failures.append(failure) }
        }
        #expect(failures.isEmpty, "\(failures.count) of \(cases.count) cases differ:\n\(failures.prefix(5).joined(separator: "\n"))")
    }

    @Test func featureSnippetsRenderLikeJinja2() throws {
        let snippets = Fixtures.cases(named: "snippets")
        #expect(snippets.count > 40)
        var failures: [String] = []
        for s in snippets {
            let id = s["id"]?.stringValue ?? "?"
            do {
                let template = try ChatTemplate(source: s["source"]?.stringValue ?? "")
                if let failure = Fixtures.check(template, s, label: id) { failures.append(failure) }
            } catch {
                failures.append("\(id): parse error \(error)")
            }
        }
        #expect(failures.isEmpty, "\(failures.count) snippets differ:\n\(failures.joined(separator: "\n"))")
    }

    /// The convenience entry point builds the same context transformers would (bar key order).
    @Test func renderMessagesConvenience() throws {
        let template = Fixtures.configured(try ChatTemplate(source: try Fixtures.source("llama-3.2-instruct")))
        let out = try template.render(
            messages: [["role": "system", "content": "Be brief."], ["role": "user", "content": "Hi"]],
            addGenerationPrompt: true,
            variables: ["bos_token": "<|begin_of_text|>"])
        #expect(out == "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 14 Mar 2025\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
    }
}
