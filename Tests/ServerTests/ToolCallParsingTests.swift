import ByteExactJSON
import ChatTemplates
import Foundation
@testable import Server
import Testing

/// The three tool-call formats, whole and streamed in every split: calls
/// come out with their arguments as Python's json.dumps writes them, text
/// before them stays content, and anything that does not parse — or names a
/// function the request did not declare — stays text, byte for byte.
struct ToolCallParsingTests {
    static let declared: Set<String> = ["get_weather", "get_time"]
    static let weather = ToolCall(name: "get_weather", arguments: #"{"city": "Paris", "unit": "celsius"}"#)
    static let time = ToolCall(name: "get_time", arguments: #"{"zone": "CET"}"#)

    struct Case: Sendable, CustomTestStringConvertible {
        let format: ToolCallFormat
        let text: String
        let content: String
        let calls: [ToolCall]
        var testDescription: String { "\(format): \(text.prefix(40))" }
    }

    static let cases: [Case] = [
        Case(format: .qwen25, text: "Let me check.<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"celsius\"}}\n</tool_call>",
             content: "Let me check.", calls: [weather]),
        Case(format: .qwen25, text: "<tool_call>\n{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\",\"unit\":\"celsius\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"zone\": \"CET\"}}\n</tool_call>",
             content: "", calls: [weather, time]),
        Case(format: .llama3, text: "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\", \"unit\": \"celsius\"}}", content: "", calls: [weather]),
        Case(format: .llama3, text: "Sure.<|python_tag|>{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\", \"unit\": \"celsius\"}}; {\"name\": \"get_time\", \"arguments\": {\"zone\": \"CET\"}}",
             content: "Sure.", calls: [weather, time]),
        Case(format: .mistral, text: "[TOOL_CALLS] [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"celsius\"}}, {\"name\": \"get_time\", \"arguments\": {\"zone\": \"CET\"}}]",
             content: "", calls: [weather, time]),
        Case(format: .mistral, text: "Calling.[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris\", \"unit\": \"celsius\"}[TOOL_CALLS]get_time[ARGS]{\"zone\":\"CET\"}",
             content: "Calling.", calls: [weather, time]),
        // Arguments given as JSON text are passed on as they are; strings with braces and escapes do not end an object.
        Case(format: .qwen25, text: "<tool_call>{\"name\": \"get_time\", \"arguments\": \"{\\\"zone\\\": \\\"CET\\\"}\"}</tool_call>", content: "", calls: [time]),
        Case(format: .llama3, text: "{\"name\": \"get_time\", \"parameters\": {\"zone\": \"}{\\\"é\\n\"}}", content: "",
             calls: [ToolCall(name: "get_time", arguments: #"{"zone": "}{\"é\n"}"#)]),
        // Stays text: plain replies, broken JSON, unterminated calls, undeclared functions, text after the calls.
        Case(format: .qwen25, text: "It is sunny in Paris.", content: "It is sunny in Paris.", calls: []),
        Case(format: .qwen25, text: "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": }\n</tool_call>",
             content: "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": }\n</tool_call>", calls: []),
        Case(format: .qwen25, text: "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {}}", content: "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {}}", calls: []),
        Case(format: .qwen25, text: "<tool_call>{\"name\": \"rm_rf\", \"arguments\": {}}</tool_call>", content: "<tool_call>{\"name\": \"rm_rf\", \"arguments\": {}}</tool_call>", calls: []),
        Case(format: .qwen25, text: "<tool_call>{\"name\": \"get_time\", \"arguments\": {}}</tool_call> and more", content: "<tool_call>{\"name\": \"get_time\", \"arguments\": {}}</tool_call> and more", calls: []),
        Case(format: .llama3, text: "{not json", content: "{not json", calls: []),
        Case(format: .llama3, text: "The answer is {\"name\": 1}.", content: "The answer is {\"name\": 1}.", calls: []),
        Case(format: .mistral, text: "[TOOL_CALLS] [{\"name\": \"get_time\", \"arguments\": [1]}]", content: "[TOOL_CALLS] [{\"name\": \"get_time\", \"arguments\": [1]}]", calls: []),
    ]

    @Test(arguments: cases)
    func aWholeReplySplitsIntoTextAndCalls(_ c: Case) {
        let reply = c.format.extract(c.text, declared: Self.declared)
        #expect(reply.calls == c.calls)
        #expect(reply.content == c.content)
    }

    /// Every way of cutting the reply into two or three stream pieces sends the same text and finds the same calls.
    @Test(arguments: cases)
    func aStreamedReplySplitsTheSameWayWhereverItIsCut(_ c: Case) {
        let characters = Array(c.text)
        let step = max(1, characters.count / 40)
        for first in stride(from: 0, through: characters.count, by: step) {
            for second in stride(from: first, through: characters.count, by: step * 3) {
                let pieces = [characters[..<first], characters[first..<second], characters[second...]].map { String($0) }
                var stream = ToolCallStream(reader: .format(c.format, declared: Self.declared))
                var sent = pieces.map { stream.feed($0) }.joined()
                let end = stream.finish()
                sent += end.content
                #expect(end.calls == c.calls, "cut at \(first), \(second)")
                // Text before a call goes out as it came (untrimmed); without calls, everything does.
                if c.calls.isEmpty { #expect(sent == c.text, "cut at \(first), \(second)") } else { #expect(sent.trimmingCharacters(in: .whitespacesAndNewlines) == c.content) }
            }
        }
    }

    @Test func textThatMerelyLooksLikeTheStartOfAMarkerIsSentOnceItCannotBeOne() {
        var stream = ToolCallStream(reader: .format(.qwen25, declared: Self.declared))
        #expect(stream.feed("a <tool") == "a ")
        #expect(stream.feed("box> b") == "<toolbox> b")
        #expect(stream.finish() == ToolCallExtraction(content: "", calls: []))
    }

    @Test func argumentsAreWrittenAsPythonsJSONDumpsWritesThem() throws {
        let value = try JSONParser.parse(Data(#"{"b":1.0,"a":[true,null,2,1e100,0.5],"s":"\u00e9\t\u0001\"","o":{}}"#.utf8))
        #expect(TemplateValue(json: value).pythonJSONText == #"{"b": 1.0, "a": [true, null, 2, 1e+100, 0.5], "s": "é\t\u0001\"", "o": {}}"#)
    }

    @Test func parserNamesAreSGLangs() {
        #expect(ToolCallFormat(parserName: "qwen") == .qwen25)
        #expect(ToolCallFormat(parserName: "llama3") == .llama3)
        #expect(ToolCallFormat(parserName: "mistral") == .mistral)
        #expect(ToolCallFormat(parserName: "deepseekv3") == nil)
    }
}
