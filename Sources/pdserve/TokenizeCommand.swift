import ArgumentParser
import ByteExactJSON
import ChatTemplates
import Foundation
import Server
import Tokenization

/// `pdserve tokenize`: a model's tokenizer without a model — to see how a prompt is split,
/// or to compare PDServe's tokenizer with another (tests/reference/make_real_tokenizer_fixtures.py).
struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Encode text (or decode ids, or render a chat) with a model's tokenizer.",
        discussion: """
            With TEXT, prints its token ids as a JSON array. With --jsonl, reads one JSON object per \
            line from stdin and writes one per line to stdout:
              {"text": "...", "add_special_tokens": true}                     -> {"ids": [...]}
              {"ids": [...], "skip_special_tokens": false}                    -> {"text": "..."}
              {"ids": [...], "skip_special_tokens": false, "stream": true}    -> {"text": "..."} (incremental detokenization, concatenated)
              {"messages": [...], "add_generation_prompt": true}              -> {"ids": [...], "prompt": "..."}
            A line that cannot be served gets {"error": "..."}.
            """
    )

    @Option(help: "A folder with tokenizer.json (and tokenizer_config.json), e.g. a model checkpoint.")
    var tokenizerPath: String

    @Option(help: "A Jinja chat template file to use instead of the tokenizer's.")
    var chatTemplate: String?

    @Flag(help: "Do not add the post-processor's special tokens (BOS …) to TEXT.")
    var noSpecialTokens = false

    @Flag(help: "Read JSON lines from stdin (see above) instead of TEXT.")
    var jsonl = false

    @Argument(help: "Text to encode.")
    var text: String?

    func validate() throws {
        guard jsonl != (text != nil) else { throw ValidationError("Give either TEXT or --jsonl.") }
    }

    func run() throws {
        let tokenizer: Tokenizer
        do {
            tokenizer = try Tokenizer(directory: URL(fileURLWithPath: tokenizerPath))
        } catch {
            throw ValidationError("Cannot load the tokenizer in \(tokenizerPath): \(error)")
        }
        if let text {
            print(String(decoding: JSON.encode(tokenizer.encode(text, addSpecialTokens: !noSpecialTokens)), as: UTF8.self))
            return
        }
        var templateSource = tokenizer.chatTemplate
        if let chatTemplate {
            do { templateSource = try String(contentsOfFile: chatTemplate, encoding: .utf8) } catch {
                throw ValidationError("Cannot read the chat template \(chatTemplate): \(error.localizedDescription)")
            }
        }
        let session = TokenizeSession(tokenizer: tokenizer, renderer: ChatPromptRenderer(templateSource: templateSource, tokenizer: tokenizer))
        let output = FileHandle.standardOutput
        while let line = readLine(strippingNewline: true) {
            guard !line.isEmpty else { continue }
            output.write(Data(JSON.encode(session.answer(Data(line.utf8))) + [0x0A]))
        }
    }
}

/// One answer per JSON line of `pdserve tokenize --jsonl`.
private struct TokenizeSession {
    let tokenizer: Tokenizer
    let renderer: ChatPromptRenderer

    func answer(_ line: Data) -> [String: Any] {
        let request: JSONValue
        do { request = try JSONParser.parse(line) } catch { return ["error": "not JSON: \(error)"] }
        if let text = request["text"]?.stringValue {
            return ["ids": tokenizer.encode(text, addSpecialTokens: request["add_special_tokens"]?.boolValue ?? true)]
        }
        let skip = request["skip_special_tokens"]?.boolValue ?? false
        if let list = request["ids"]?.arrayValue {
            let ids = list.compactMap(\.intValue)
            guard ids.count == list.count else { return ["error": "'ids' must be an array of integers"] }
            guard request["stream"]?.boolValue == true else { return ["text": tokenizer.decode(ids, skipSpecialTokens: skip)] }
            var detokenizer = IncrementalDetokenizer(tokenizer: tokenizer, skipSpecialTokens: skip)
            for id in ids { _ = detokenizer.append(id) }
            _ = detokenizer.finish()
            return ["text": detokenizer.text]
        }
        if request["messages"] != nil {
            do {
                let prompt = try renderer.render(TemplateValue(json: request), addGenerationPrompt: request["add_generation_prompt"]?.boolValue ?? true)
                return ["ids": tokenizer.encode(prompt, addSpecialTokens: false), "prompt": prompt]
            } catch {
                return ["error": "\(error)"]
            }
        }
        return ["error": "expected 'text', 'ids' or 'messages'"]
    }
}
