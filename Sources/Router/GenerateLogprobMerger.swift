import Foundation

/// `/generate` with `return_logprob`: the prefill's
/// `meta_info.input_token_logprobs` go in front of the decode's (which
/// cover only what the decode itself ran). Items are told apart by their
/// `index` (a batch) or position; stream events are cumulative, so the
/// prefill's last event of an item holds all of its values.
struct GenerateLogprobMerger: PrefillAnswerMerger {
    static let field = "input_token_logprobs"

    func prefillParts(from body: Data) -> [Int: Any] {
        GenerateItems.metaInfo(Self.field, in: objects(in: body)) { $0 is [Any] }
    }

    func merge(_ json: Any, pending: inout [Int: Any]) -> Any? {
        GenerateItems.merge(json, pending: &pending) { object, part in
            guard let front = part as? [Any], var meta = object["meta_info"] as? [String: Any] else { return nil }
            var merged = object
            meta[Self.field] = front + ((meta[Self.field] as? [Any]) ?? [])
            merged["meta_info"] = meta
            return merged
        }
    }
}
