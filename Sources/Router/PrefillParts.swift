import Foundation

/// What each of a request's mergers found in the prefill's answer, still
/// to be put into the decode's: built once from the prefill's body, then
/// applied to the decode's JSON answer or to each of its stream events.
struct PrefillParts: @unchecked Sendable {
    private var pending: [(merger: any PrefillAnswerMerger, parts: [Int: Any])]

    init(_ mergers: [any PrefillAnswerMerger], prefillBody body: Data) {
        pending = mergers.map { ($0, $0.prefillParts(from: body)) }.filter { !$0.parts.isEmpty }
    }

    var isEmpty: Bool { pending.isEmpty }

    /// A whole JSON answer with every part merged in (unchanged where none applies).
    func merged(into json: Any) -> Any {
        pending.reduce(json) { json, entry in
            var parts = entry.parts
            return entry.merger.merge(json, pending: &parts) ?? json
        }
    }

    /// One stream event with the parts its items still need; those parts are used up.
    mutating func rewrite(event: String) -> String {
        pending.indices.reduce(event) { event, i in pending[i].merger.rewrite(event: event, pending: &pending[i].parts) }
    }
}
