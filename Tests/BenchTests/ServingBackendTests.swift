import Testing
@testable import Bench

/// The request bodies `pdserve bench serving` sends: greedy by default, and
/// `--sampling-params` landing where each API reads its sampling fields.
@Suite struct ServingBackendTests {
    let prompt = ServingPrompt(tokenIds: [5, 6], text: "x", promptLength: 2, outputLength: 7, workloadClass: "chat")

    @Test func greedyByDefaultWithTheRequestsOwnLength() throws {
        let body = ServingBackend.sglang.body(for: prompt, model: nil, stream: true)
        let params = try #require(body["sampling_params"] as? [String: Any])
        #expect(params["temperature"] as? Double == 0)
        #expect(params["max_new_tokens"] as? Int == 7)
        #expect(body["input_ids"] as? [Int] == [5, 6])
    }

    @Test func samplingGoesInsideSamplingParamsForGenerate() throws {
        let body = ServingBackend.sglang.body(for: prompt, model: nil, stream: true, sampling: ["temperature": 1.0, "top_p": 0.9])
        let params = try #require(body["sampling_params"] as? [String: Any])
        #expect(params["temperature"] as? Double == 1.0)
        #expect(params["top_p"] as? Double == 0.9)
        #expect(params["max_new_tokens"] as? Int == 7)
        #expect(params["ignore_eos"] as? Bool == true)
        #expect(body["temperature"] == nil)
    }

    @Test func samplingGoesToTheTopLevelForOpenAI() {
        for backend in [ServingBackend.openai, .openaiChat] {
            let body = backend.body(for: prompt, model: "m", stream: false, sampling: ["temperature": 1.0, "top_p": 0.9])
            #expect(body["temperature"] as? Double == 1.0)
            #expect(body["top_p"] as? Double == 0.9)
            #expect(body["max_tokens"] as? Int == 7)
        }
    }
}
