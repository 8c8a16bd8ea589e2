import Foundation
import Hummingbird
import Testing
@testable import Router

/// SSE framing and the prefill-first prompt logprob merge.
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
        let prefill = LogprobMerger.prefillLogprobs(from: Data(#"[{"meta_info":{"input_token_logprobs":[[null,1,null],[-0.5,2,null]]}},{"meta_info":{"input_token_logprobs":[[null,7,null]]}}]"#.utf8))
        let decode: Any = [
            ["text": "a", "meta_info": ["input_token_logprobs": [[-0.1, 3, NSNull()]]]],
            ["text": "b", "meta_info": ["input_token_logprobs": [Any]()]],
        ]
        let merged = LogprobMerger.merge(response: decode, prefill: prefill) as! [[String: Any]]
        let first = (merged[0]["meta_info"] as! [String: Any])["input_token_logprobs"] as! [[Any]]
        #expect(first.map { $0[1] as! Int } == [1, 2, 3])
        let second = (merged[1]["meta_info"] as! [String: Any])["input_token_logprobs"] as! [[Any]]
        #expect(second.map { $0[1] as! Int } == [7])
    }

    @Test func streamedPrefillTakesTheLastEventOfEachIndex() {
        let stream = "data: {\"meta_info\":{\"input_token_logprobs\":[[null,1,null]]}}\n\n"
            + "data: {\"meta_info\":{\"input_token_logprobs\":[[null,1,null],[-1.0,2,null]]}}\n\ndata: [DONE]\n\n"
        let prefill = LogprobMerger.prefillLogprobs(from: Data(stream.utf8))
        #expect(prefill[0]?.count == 2)
    }
}
