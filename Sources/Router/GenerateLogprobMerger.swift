import Foundation

/// `/generate` with `return_logprob`: the prefill's
/// `meta_info.input_token_logprobs` go in front of the decode's (which
/// cover only what the decode itself ran). Items are told apart by their
/// `index` (a batch) or position; stream events are cumulative, so the
/// prefill's last event of an item holds all of its values.
struct GenerateLogprobMerger: PromptLogprobMerger {
    static let field = "input_token_logprobs"

    func prefillLogprobs(from body: Data) -> [Int: Any] {
        var out: [Int: Any] = [:]
        for json in objects(in: body) {
            for (position, item) in ((json as? [Any]) ?? [json]).enumerated() {
                guard let object = item as? [String: Any], let meta = object["meta_info"] as? [String: Any],
                      let logprobs = meta[Self.field] as? [Any] else { continue }
                out[(object["index"] as? Int) ?? position] = logprobs
            }
        }
        return out
    }

    func merge(_ json: Any, pending: inout [Int: Any]) -> Any? {
        if let list = json as? [Any] {
            var changed = false
            let merged = list.enumerated().map { position, item -> Any in
                guard let object = item as? [String: Any],
                      let merged = merge(object, index: (object["index"] as? Int) ?? position, pending: &pending) else { return item }
                changed = true
                return merged
            }
            return changed ? merged : nil
        }
        guard let object = json as? [String: Any] else { return nil }
        return merge(object, index: (object["index"] as? Int) ?? 0, pending: &pending)
    }

    private func merge(_ object: [String: Any], index: Int, pending: inout [Int: Any]) -> [String: Any]? {
        guard let front = pending[index] as? [Any], var meta = object["meta_info"] as? [String: Any] else { return nil }
        pending[index] = nil
        var merged = object
        meta[Self.field] = front + ((meta[Self.field] as? [Any]) ?? [])
        merged["meta_info"] = meta
        return merged
    }
}
