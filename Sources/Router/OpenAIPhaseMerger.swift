import Foundation

/// `/v1/completions` and `/v1/chat/completions` in PD mode, asked for
/// `return_phases`: each choice's phases from the prefill join the decode's
/// in the choice's final answer (streamed: its last event), as
/// `GeneratePhaseMerger` does for `/generate`.
struct OpenAIPhaseMerger: PrefillAnswerMerger {
    static let field = "phases"

    func prefillParts(from body: Data) -> [Int: Any] {
        var out: [Int: Any] = [:]
        for json in objects(in: body) {
            for choice in ((json as? [String: Any])?["choices"] as? [Any]) ?? [] {
                guard let choice = choice as? [String: Any], let index = choice["index"] as? Int,
                      let phases = choice[Self.field] as? [String: Any] else { continue }
                out[index] = phases
            }
        }
        return out
    }

    var mergesIntoFirstEvent: Bool { false }

    func mayTake(event: String) -> Bool { event.contains("\"\(Self.field)\"") }

    func merge(_ json: Any, pending: inout [Int: Any]) -> Any? {
        guard var object = json as? [String: Any], let choices = object["choices"] as? [Any] else { return nil }
        var changed = false
        object["choices"] = choices.map { item -> Any in
            guard var choice = item as? [String: Any], let index = choice["index"] as? Int,
                  let own = choice[Self.field] as? [String: Any], let prefill = pending.removeValue(forKey: index) as? [String: Any] else { return item }
            choice[Self.field] = own.merging(prefill) { decode, _ in decode }
            changed = true
            return choice
        }
        return changed ? object : nil
    }
}
