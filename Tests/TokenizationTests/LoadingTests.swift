import Foundation
import Testing
@testable import Tokenization

/// Loading from folders and data: tokenizer_config.json, chat templates, and clear errors.
@Suite struct LoadingTests {
    static let fixtureModels = FixtureCase.fixturesRoot.deletingLastPathComponent().appendingPathComponent("models")

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tokenization-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func minimalTokenizerJSON(modelType: String = "BPE", extra: [String: Any] = [:]) -> Data {
        var model = TestTokenizers.bpeModel(vocab: ["a", "b", "ab"], merges: ["a b"])
        model["type"] = modelType
        var root = try! JSONSerialization.jsonObject(with: TestTokenizers.json(model: model)) as! [String: Any]
        root.merge(extra) { _, new in new }
        return try! JSONSerialization.data(withJSONObject: root)
    }

    @Test func specialTokenIdsComeFromTokenizerConfig() throws {
        let llama3 = try FixtureTokenizers.get("llama3")
        #expect(llama3.bosTokenId == llama3.id(forToken: "<|begin_of_text|>"))
        #expect(llama3.eosTokenIds == [llama3.id(forToken: "<|end_of_text|>")!])
        #expect(llama3.bosTokenId.map(llama3.isSpecial) == true)
        let qwen2 = try FixtureTokenizers.get("qwen2")
        #expect(qwen2.bosTokenId == nil)
        #expect(qwen2.eosTokenIds == [qwen2.id(forToken: "<|endoftext|>")!])
        #expect(qwen2.addBosToken == false)
        let llama2 = try FixtureTokenizers.get("llama2")
        #expect(llama2.bosTokenId == 1)
        #expect(llama2.eosTokenIds == [2])
        #expect(llama2.token(forId: 1) == "<s>")
        #expect(llama2.vocabSize == 1 + ((0..<100_000).last { llama2.token(forId: $0) != nil } ?? -1))
    }

    @Test func modelFolderTokenizersReproduceTheirPrompts() throws {
        let folders = try FileManager.default.contentsOfDirectory(atPath: Self.fixtureModels.path).sorted()
        #expect(folders.count >= 5)
        for folder in folders {
            let dir = Self.fixtureModels.appendingPathComponent(folder)
            let t = try Tokenizer(directory: dir)
            let reference = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("reference.json"))) as! [String: Any]
            let addBos = reference["add_bos"] as? Bool ?? false
            let prompts = reference["prompts"] as! [[Int]]
            let texts = reference["texts"] as! [Any]
            var checked = 0
            for (text, prompt) in zip(texts, prompts) {
                guard let text = text as? String else { continue }
                let bosName = t.bosTokenId.flatMap(t.token(forId:))
                let startsWithBos = bosName.map { text.utf8.starts(with: $0.utf8) } ?? false
                #expect(t.encode(text, addSpecialTokens: addBos && !startsWithBos) == prompt, "\(folder): \(text.debugDescription)")
                checked += 1
            }
            #expect(checked > 0, "\(folder) has no text prompts")
            // Every model folder ships a chat template, in tokenizer_config.json or chat_template.jinja.
            if !["gpt2tok-llama-fp32", "llama-mqa-eos-fp32"].contains(folder) {
                #expect(t.chatTemplate?.contains("messages") == true, "\(folder) chat template")
            }
        }
    }

    @Test func chatTemplateSources() throws {
        let model = TestTokenizers.bpeModel(vocab: ["a"])
        let plain = try TestTokenizers.make(model: model, config: #"{"chat_template": "{{ messages }}"}"#)
        #expect(plain.chatTemplate == "{{ messages }}")
        let named = try TestTokenizers.make(model: model, config: #"{"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]}"#)
        #expect(named.chatTemplate == "D")
        let none = try TestTokenizers.make(model: model)
        #expect(none.chatTemplate == nil)
        #expect(none.bosTokenId == nil)
        #expect(none.eosTokenIds.isEmpty)

        // chat_template.jinja beside the tokenizer wins over the config's template.
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Self.minimalTokenizerJSON().write(to: dir.appendingPathComponent("tokenizer.json"))
        try Data(#"{"chat_template": "old", "eos_token": {"content": "ab", "__type": "AddedToken"}}"#.utf8)
            .write(to: dir.appendingPathComponent("tokenizer_config.json"))
        #expect(try Tokenizer(directory: dir).chatTemplate == "old")
        #expect(try Tokenizer(directory: dir).eosTokenIds == [2])
        try Data("{{ new }}".utf8).write(to: dir.appendingPathComponent("chat_template.jinja"))
        #expect(try Tokenizer(directory: dir).chatTemplate == "{{ new }}")
    }

    @Test func missingFolderOrFileIsReported() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let error = #expect(throws: TokenizerError.self) { try Tokenizer(directory: dir) }
        guard case .fileNotFound(let path)? = error else {
            Issue.record("expected fileNotFound, got \(String(describing: error))")
            return
        }
        #expect(path.hasSuffix("tokenizer.json"))
        #expect(error?.description.contains("tokenizer.json") == true)
    }

    @Test func corruptJSONIsReportedWithTheFileName() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data(#"{"model": {"type": "BPE", "vocab": {"a": 0,}}"#.utf8).write(to: dir.appendingPathComponent("tokenizer.json"))
        let error = #expect(throws: TokenizerError.self) { try Tokenizer(directory: dir) }
        guard case .invalidJSON(let file, _)? = error else {
            Issue.record("expected invalidJSON, got \(String(describing: error))")
            return
        }
        #expect(file.hasSuffix("tokenizer.json"))

        try Self.minimalTokenizerJSON().write(to: dir.appendingPathComponent("tokenizer.json"))
        try Data("not json".utf8).write(to: dir.appendingPathComponent("tokenizer_config.json"))
        let configError = #expect(throws: TokenizerError.self) { try Tokenizer(directory: dir) }
        #expect(configError?.description.contains("tokenizer_config.json") == true)
    }

    @Test func truncatedFilesThrowInsteadOfCrashing() throws {
        let data = try Data(contentsOf: FixtureCase.directory("llama2").appendingPathComponent("tokenizer.json"))
        for fraction in stride(from: 0.0, to: 1.0, by: 0.05) {
            let cut = data.prefix(Int(Double(data.count) * fraction))
            #expect(throws: TokenizerError.self) { try Tokenizer(tokenizerJSON: cut, tokenizerConfigJSON: nil) }
        }
    }

    @Test func unsupportedComponentsAreNamed() throws {
        let cases: [(Data, String, String)] = [
            (Self.minimalTokenizerJSON(modelType: "WordPiece"), "model", "WordPiece"),
            (Self.minimalTokenizerJSON(modelType: "Unigram"), "model", "Unigram"),
            (Self.minimalTokenizerJSON(extra: ["normalizer": ["type": "Precompiled", "precompiled_charsmap": ""]]), "normalizer", "Precompiled"),
            (Self.minimalTokenizerJSON(extra: ["pre_tokenizer": ["type": "BertPreTokenizer"]]), "pre_tokenizer", "BertPreTokenizer"),
            (Self.minimalTokenizerJSON(extra: ["decoder": ["type": "CTC"]]), "decoder", "CTC"),
            (Self.minimalTokenizerJSON(extra: ["post_processor": ["type": "Mystery"]]), "post_processor", "Mystery"),
        ]
        for (data, component, type) in cases {
            let error = #expect(throws: TokenizerError.self) { try Tokenizer(tokenizerJSON: data, tokenizerConfigJSON: nil) }
            #expect(error == .unsupported(file: "tokenizer.json", component: component, type: type))
            #expect(error?.description == "tokenizer.json: unsupported \(component) type '\(type)'")
        }
    }

    @Test func inconsistentModelsAreRejected() throws {
        // A merge whose tokens are not in the vocabulary.
        let bad = TestTokenizers.json(model: TestTokenizers.bpeModel(vocab: ["a", "b"], merges: ["a b"]))
        let error = #expect(throws: TokenizerError.self) { try Tokenizer(tokenizerJSON: bad, tokenizerConfigJSON: nil) }
        #expect(error?.description.contains("merge #0") == true)
        let noModel = Data(#"{"normalizer": null}"#.utf8)
        #expect(throws: TokenizerError.missingField(file: "tokenizer.json", component: "tokenizer", field: "model")) {
            try Tokenizer(tokenizerJSON: noModel, tokenizerConfigJSON: nil)
        }
        let badRegex = Self.minimalTokenizerJSON(extra: ["pre_tokenizer": ["type": "Split", "pattern": ["Regex": "(unclosed"], "behavior": "Isolated"]])
        let regexError = #expect(throws: TokenizerError.self) { try Tokenizer(tokenizerJSON: badRegex, tokenizerConfigJSON: nil) }
        #expect(regexError?.description.contains("(unclosed") == true)
    }
}

extension LoadingTests {
    @Test func outOfRangeIdsAreRejected() throws {
        let hugeVocab = Data(#"{"model": {"type": "BPE", "vocab": {"a": 1099511627776}, "merges": []}}"#.utf8)
        #expect(throws: TokenizerError.self) { try Tokenizer(tokenizerJSON: hugeVocab, tokenizerConfigJSON: nil) }
        let negativeAdded = Self.minimalTokenizerJSON(extra: ["added_tokens": [TestTokenizers.addedToken(-1, "<x>")]])
        #expect(throws: TokenizerError.self) { try Tokenizer(tokenizerJSON: negativeAdded, tokenizerConfigJSON: nil) }
    }
}
