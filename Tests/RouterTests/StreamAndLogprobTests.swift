import Foundation
import Hummingbird
import Testing
@testable import Router

/// SSE framing and the merges of the prefill's prompt logprobs.
@Suite struct StreamAndLogprobTests {
    @Test func splitterReassemblesEventsAcrossChunks() {
        var splitter = SSEEventSplitter()
        #expect(splitter.append(ByteBuffer(string: "data: {\"a\"")).isEmpty)
        #expect(splitter.append(ByteBuffer(string: ":1}\n\ndata: [DO")) == ["data: {\"a\":1}"])
        #expect(splitter.append(ByteBuffer(string: "NE]\r\n\r\n")) == ["data: [DONE]"])
        #expect(splitter.finish() == nil)
        #expect(SSEEventSplitter.data(of: "data: [DONE]") == nil)
        #expect(SSEEventSplitter.data(of: "data: {\"x\":2}") == "{\"x\":2}")
    }

    @Test func nonStreamedLogprobsArePrependedPerItem() {
        let merger = GenerateLogprobMerger()
        var prefill = merger.prefillParts(from: Data(#"[{"meta_info":{"input_token_logprobs":[[null,1,null],[-0.5,2,null]]}},{"meta_info":{"input_token_logprobs":[[null,7,null]]}}]"#.utf8))
        let decode: Any = [
            ["text": "a", "meta_info": ["input_token_logprobs": [[-0.1, 3, NSNull()]]]],
            ["text": "b", "meta_info": ["input_token_logprobs": [Any]()]],
        ]
        let merged = merger.merge(decode, pending: &prefill) as! [[String: Any]]
        #expect(prefill.isEmpty)
        let first = (merged[0]["meta_info"] as! [String: Any])["input_token_logprobs"] as! [[Any]]
        #expect(first.map { $0[1] as! Int } == [1, 2, 3])
        let second = (merged[1]["meta_info"] as! [String: Any])["input_token_logprobs"] as! [[Any]]
        #expect(second.map { $0[1] as! Int } == [7])
    }

    @Test func streamedPrefillTakesTheLastEventOfEachIndex() {
        let stream = "data: {\"meta_info\":{\"input_token_logprobs\":[[null,1,null]]}}\n\n"
            + "data: {\"meta_info\":{\"input_token_logprobs\":[[null,1,null],[-1.0,2,null]]}}\n\ndata: [DONE]\n\n"
        let prefill = GenerateLogprobMerger().prefillParts(from: Data(stream.utf8))
        #expect((prefill[0] as? [Any])?.count == 2)
    }

    @Test func echoedPromptNullsAreFilledFromTheStreamedPrefillOnce() throws {
        // The prefill streams the prompt's entries, then its one generated token, as deltas.
        let stream = #"data: {"choices":[{"index":1,"text":"ab","logprobs":{"token_logprobs":[null,-0.5],"top_logprobs":[null,{"b":-0.4}]}}]}"#
            + "\n\n" + #"data: {"choices":[{"index":1,"text":"c","logprobs":{"token_logprobs":[-0.2],"top_logprobs":[{"c":-0.2}]}}]}"#
            + "\n\ndata: [DONE]\n\n"
        let merger = CompletionLogprobMerger()
        var pending = merger.prefillParts(from: Data(stream.utf8))
        let echo = #"data: {"choices":[{"index":1,"text":"abc","logprobs":{"token_logprobs":[null,null,-0.25],"top_logprobs":[null,null,{"c":-0.25}]}}]}"#
        let merged = try #require(JSONSerialization.jsonObject(with: Data(merger.rewrite(event: echo, pending: &pending).dropFirst(6).utf8)) as? [String: Any])
        let logprobs = try #require(((merged["choices"] as? [[String: Any]])?.first?["logprobs"]) as? [String: Any])
        // Position 0 stays null (nothing predicts it); the decode's own value at position 2 is kept.
        #expect((logprobs["token_logprobs"] as? [Any])?.compactMap { $0 as? Double } == [-0.5, -0.25])
        #expect(((logprobs["top_logprobs"] as? [Any])?[1] as? [String: Double]) == ["b": -0.4])
        #expect(pending.isEmpty)
        #expect(merger.rewrite(event: echo, pending: &pending) == echo)
    }
}
