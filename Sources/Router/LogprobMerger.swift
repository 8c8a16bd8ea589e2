import ByteExactJSON
import Foundation

/// Prompt logprobs in PD mode: the prefill computed the prompt, so its
/// `meta_info.input_token_logprobs` go in front of the decode's (which
/// cover only what the decode itself ran). Batched responses merge item by
/// item; a streamed response gets them in each item's first chunk.
enum LogprobMerger {
    static let field = "input_token_logprobs"

    /// The prefill's input logprobs per item index, from a JSON response
    /// (object or list) or an SSE stream (the last event of each index wins:
    /// stream events are cumulative).
    static func prefillLogprobs(from body: Data) -> [Int: [Any]] {
        if let json = JSONParser.foundationObject(from: body) {
            return collect(json)
        }
        var out: [Int: [Any]] = [:]
        var splitter = SSEEventSplitter()
        var events = splitter.append(.init(bytes: body))
        if let rest = splitter.finish() { events.append(rest) }
        for event in events {
            guard let data = SSEEventSplitter.data(of: event), let json = JSONParser.foundationObject(from: Data(data.utf8)) else { continue }
            out.merge(collect(json)) { _, new in new }
        }
        return out
    }

    private static func collect(_ json: Any) -> [Int: [Any]] {
        var out: [Int: [Any]] = [:]
        let items = (json as? [Any]) ?? [json]
        for (position, item) in items.enumerated() {
            guard let object = item as? [String: Any], let meta = object["meta_info"] as? [String: Any],
                  let logprobs = meta[field] as? [Any] else { continue }
            out[(object["index"] as? Int) ?? position] = logprobs
        }
        return out
    }

    /// Prepends the prefill's logprobs to one response object of item `index`; nil when there is nothing to do.
    static func merge(_ object: [String: Any], index: Int, prefill: [Int: [Any]]) -> [String: Any]? {
        guard let front = prefill[index], var meta = object["meta_info"] as? [String: Any] else { return nil }
        var merged = object
        meta[field] = front + ((meta[field] as? [Any]) ?? [])
        merged["meta_info"] = meta
        return merged
    }

    /// A whole non-streamed decode response (object or list) with the prefill's logprobs in front.
    static func merge(response: Any, prefill: [Int: [Any]]) -> Any {
        if let list = response as? [Any] {
            return list.enumerated().map { position, item -> Any in
                guard let object = item as? [String: Any] else { return item }
                return merge(object, index: (object["index"] as? Int) ?? position, prefill: prefill) ?? object
            }
        }
        guard let object = response as? [String: Any] else { return response }
        return merge(object, index: 0, prefill: prefill) ?? object
    }
}
