import Foundation

/// `/v1/completions` with `echo` and `logprobs`: a decode echoes its
/// prompt's tokens with `null` logprobs (it never ran the prompt); each
/// such null is filled with the prefill's value at the same position.
/// Choices are told apart by `index`; stream events carry deltas, so the
/// prefill's events of a choice are concatenated, and the decode's first
/// event of a choice (the one that echoes the prompt) is the one filled.
struct CompletionLogprobMerger: PrefillAnswerMerger {
    private static let lists = ["token_logprobs", "top_logprobs"]

    func prefillParts(from body: Data) -> [Int: Any] {
        var out: [Int: [String: [Any]]] = [:]
        for json in objects(in: body) {
            for choice in Self.choices(of: json) {
                guard let index = choice["index"] as? Int, let logprobs = choice["logprobs"] as? [String: Any] else { continue }
                for name in Self.lists {
                    out[index, default: [:]][name, default: []] += (logprobs[name] as? [Any]) ?? []
                }
            }
        }
        return out
    }

    func merge(_ json: Any, pending: inout [Int: Any]) -> Any? {
        guard var object = json as? [String: Any], let choices = object["choices"] as? [Any] else { return nil }
        var changed = false
        object["choices"] = choices.map { item -> Any in
            guard var choice = item as? [String: Any], let index = choice["index"] as? Int,
                  let prefill = pending[index] as? [String: [Any]], var logprobs = choice["logprobs"] as? [String: Any] else { return item }
            pending[index] = nil
            changed = true
            var values = (logprobs["token_logprobs"] as? [Any]) ?? []
            var tops = (logprobs["top_logprobs"] as? [Any]) ?? []
            let known = prefill["token_logprobs"] ?? [], knownTops = prefill["top_logprobs"] ?? []
            for i in values.indices where i < known.count && values[i] is NSNull && !(known[i] is NSNull) {
                values[i] = known[i]
                if i < tops.count, i < knownTops.count { tops[i] = knownTops[i] }
            }
            logprobs["token_logprobs"] = values
            logprobs["top_logprobs"] = tops
            choice["logprobs"] = logprobs
            return choice
        }
        return changed ? object : nil
    }

    private static func choices(of json: Any) -> [[String: Any]] {
        ((json as? [String: Any])?["choices"] as? [Any] ?? []).compactMap { $0 as? [String: Any] }
    }
}
