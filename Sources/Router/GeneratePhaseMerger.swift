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

/// The items of a `/generate` answer or event: a list (a batch) or one
/// object, each known by its `index` or its position.
enum GenerateItems {
    /// `meta_info[field]` of each item in `objects` (answers or events) where `accepts` it; a later
    /// object's value wins (stream events are cumulative).
    static func metaInfo(_ field: String, in objects: [Any], accepts: (Any) -> Bool) -> [Int: Any] {
        var out: [Int: Any] = [:]
        for json in objects {
            for (position, item) in ((json as? [Any]) ?? [json]).enumerated() {
                guard let object = item as? [String: Any], let value = (object["meta_info"] as? [String: Any])?[field],
                      accepts(value) else { continue }
                out[(object["index"] as? Int) ?? position] = value
            }
        }
        return out
    }

    /// `json` with `transform` applied to each item that has a pending part
    /// and takes it (returns non-nil); nil when no item did.
    static func merge(_ json: Any, pending: inout [Int: Any],
                      _ transform: (_ object: [String: Any], _ part: Any) -> [String: Any]?) -> Any? {
        func apply(_ item: Any, position: Int) -> [String: Any]? {
            guard let object = item as? [String: Any] else { return nil }
            let index = (object["index"] as? Int) ?? position
            guard let part = pending[index], let merged = transform(object, part) else { return nil }
            pending[index] = nil
            return merged
        }
        guard let list = json as? [Any] else { return apply(json, position: 0) }
        var changed = false
        let merged = list.enumerated().map { position, item -> Any in
            guard let merged = apply(item, position: position) else { return item }
            changed = true
            return merged
        }
        return changed ? merged : nil
    }
}
