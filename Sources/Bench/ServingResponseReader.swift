import Foundation

/// Reads a response — streamed events or one JSON body — of any of the
/// three APIs and keeps what the metrics need: whether an event carried new
/// tokens, and the server's token counts.
struct ServingResponseReader {
    let api: ServingBackend.API
    /// Events that carried at least one new token.
    private(set) var tokenChunks = 0
    /// The server's count of generated tokens (`/generate` meta_info, OpenAI usage).
    private(set) var completionTokens: Int?
    private(set) var promptTokens: Int?

    init(api: ServingBackend.API) { self.api = api }

    /// One SSE `data:` payload; returns whether it carried new tokens.
    /// Throws on an error event (servers report mid-stream failures that way).
    mutating func absorbEvent(_ payload: [UInt8]) throws -> Bool {
        if payload == Array("[DONE]".utf8) { return false }
        guard let object = try JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any] else {
            throw ServingBenchmarkError.server("a stream event is not a JSON object")
        }
        if let error = object["error"] { throw ServingBenchmarkError.server("error event: \(error)") }
        readUsage(object)
        switch api {
        case .generate:
            // Events are cumulative: new tokens are a growing completion count.
            guard let meta = object["meta_info"] as? [String: Any], let count = meta["completion_tokens"] as? Int else { return false }
            if let prompt = meta["prompt_tokens"] as? Int { promptTokens = prompt }
            let previous = completionTokens ?? 0
            completionTokens = count
            if count > previous { tokenChunks += 1; return true }
            return false
        case .completions, .chat:
            // Deltas: as sglang's client does, a chunk counts when it carries text.
            guard let choice = (object["choices"] as? [[String: Any]])?.first else { return false }
            let text = api == .chat ? (choice["delta"] as? [String: Any])?["content"] as? String : choice["text"] as? String
            guard let text, !text.isEmpty else { return false }
            tokenChunks += 1
            return true
        }
    }

    /// A whole non-streamed response body.
    mutating func absorbWhole(_ body: [UInt8]) throws {
        guard let object = try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            throw ServingBenchmarkError.server("the response is not a JSON object")
        }
        if let error = object["error"] { throw ServingBenchmarkError.server("error: \(error)") }
        readUsage(object)
        if api == .generate, let meta = object["meta_info"] as? [String: Any] {
            completionTokens = meta["completion_tokens"] as? Int
            promptTokens = meta["prompt_tokens"] as? Int
        }
        if (completionTokens ?? 0) > 0 { tokenChunks = 1 }
    }

    private mutating func readUsage(_ object: [String: Any]) {
        guard let usage = object["usage"] as? [String: Any] else { return }
        if let completion = usage["completion_tokens"] as? Int { completionTokens = completion }
        if let prompt = usage["prompt_tokens"] as? Int { promptTokens = prompt }
    }
}
