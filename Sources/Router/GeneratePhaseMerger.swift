import Foundation

/// `/generate` in PD mode: the prefill's `meta_info.phases` (its queue,
/// compute, bootstrap wait and KV transfer) join the decode's (bootstrap,
/// KV wait, queue, decode) in the item's final answer, so one response says
/// where all of its time went. The two halves name their phases apart.
struct GeneratePhaseMerger: PrefillAnswerMerger {
    static let field = "phases"

    func prefillParts(from body: Data) -> [Int: Any] {
        GenerateItems.metaInfo(Self.field, in: objects(in: body)) { $0 is [String: Any] }
    }

    var mergesIntoFirstEvent: Bool { false }

    /// Only an item's final event has phases: the others are relayed as they are.
    func mayTake(event: String) -> Bool { event.contains("\"\(Self.field)\"") }

    func merge(_ json: Any, pending: inout [Int: Any]) -> Any? {
        GenerateItems.merge(json, pending: &pending) { object, part in
            // Only an item's final answer has phases; earlier stream events wait for it.
            guard let prefill = part as? [String: Any], var meta = object["meta_info"] as? [String: Any],
                  let own = meta[Self.field] as? [String: Any] else { return nil }
            meta[Self.field] = own.merging(prefill) { decode, _ in decode }
            var merged = object
            merged["meta_info"] = meta
            return merged
        }
    }
}
