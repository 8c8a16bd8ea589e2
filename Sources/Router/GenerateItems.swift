import Foundation

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
