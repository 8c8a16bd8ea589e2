import Engine
import Foundation
import Tokenization

/// Builders for the pieces of OpenAI responses shared by completions and chat.
enum OpenAIFormat {
    static func newID(_ prefix: String) -> String {
        prefix + "-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
    }

    static var now: Int { Int(Date().timeIntervalSince1970) }

    /// Whether a stream ends with a usage chunk: OpenAI's `stream_options`,
    /// an object whose only key this server knows is `include_usage`.
    static func streamIncludesUsage(_ body: JSONBody) throws(APIError) -> Bool {
        guard let options = try body.object("stream_options") else { return false }
        try options.rejectUnknown(allowed: ["include_usage"])
        return try options.bool("include_usage") ?? false
    }

    /// PDServe's request field that puts each choice's phases (as `/generate`'s
    /// `meta_info.phases`) into the choice: whole, or in its last stream event.
    static let returnPhasesField = "return_phases"

    /// `choice` with its phases when the request asked and the choice has ended.
    static func withPhases(_ choice: [String: Any], _ generation: Generation, asked: Bool) -> [String: Any] {
        guard asked, generation.finish != nil else { return choice }
        var choice = choice
        choice["phases"] = (generation.phases ?? RequestPhases()).json
        return choice
    }

    static func usage(prompt: Int, completion: Int, cached: Int) -> [String: Any] {
        var u: [String: Any] = ["prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion]
        if cached > 0 { u["prompt_tokens_details"] = ["cached_tokens": cached] }
        return u
    }

    static func finishReason(_ finish: FinishReason?) -> Any {
        finish.map { $0.name as Any } ?? NSNull()
    }

    /// `logprobs.content` entries of a chat choice.
    static func chatLogprobs(_ logprobs: [TokenLogprob], tokenizer: Tokenizer) -> [[String: Any]] {
        func entry(_ token: Int, _ logprob: Float) -> [String: Any] {
            let text = tokenizer.decode([token])
            return ["token": text, "logprob": logprob, "bytes": Array(text.utf8).map(Int.init)]
        }
        return logprobs.map { lp in
            var e = entry(lp.token, lp.logprob)
            e["top_logprobs"] = lp.top.map { entry($0.token, $0.logprob) }
            return e
        }
    }
}
