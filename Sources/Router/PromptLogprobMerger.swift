import ByteExactJSON
import Foundation
import Server

/// Prompt logprobs in PD mode: the prefill computed the prompt, the decode
/// did not, so the values the prefill returned go into the decode's
/// answer. One conformer per response shape; the forwarder applies it to a
/// whole JSON answer, or to each event of a stream (an item's first event
/// takes its values, later ones pass unchanged).
protocol PromptLogprobMerger: Sendable {
    /// The prefill's prompt logprobs per item index, read from its whole answer (JSON, or an SSE stream).
    func prefillLogprobs(from body: Data) -> [Int: Any]
    /// `json` (an answer or one event's object) with the pending logprobs of its items merged in, or nil
    /// when none of its items had any pending; merged items leave `pending`.
    func merge(_ json: Any, pending: inout [Int: Any]) -> Any?
}

extension PromptLogprobMerger {
    /// The JSON objects of a body: the body itself when it is JSON, otherwise the data of each SSE event.
    func objects(in body: Data) -> [Any] {
        if let json = JSONParser.foundationObject(from: body) { return [json] }
        var splitter = SSEEventSplitter()
        var events = splitter.append(.init(bytes: body))
        if let rest = splitter.finish() { events.append(rest) }
        return events.compactMap { event in
            SSEEventSplitter.data(of: event).flatMap { JSONParser.foundationObject(from: Data($0.utf8)) }
        }
    }

    /// One stream event with the pending logprobs merged in, if its item still needs them.
    func rewrite(event: String, pending: inout [Int: Any]) -> String {
        guard let data = SSEEventSplitter.data(of: event), let json = JSONParser.foundationObject(from: Data(data.utf8)),
              let merged = merge(json, pending: &pending) else { return event }
        return "data: " + String(decoding: JSON.encode(merged), as: UTF8.self)
    }
}
