import ByteExactJSON
import Foundation
import Server

/// What only the prefill of a PD pair knows, put into the decode's answer
/// the client gets: prompt logprobs (the decode never ran the prompt) and
/// the prefill's phases. One conformer per part and response shape; the
/// forwarder applies each to a whole JSON answer, or to each event of a
/// stream (the first event of an item that can take the part takes it,
/// later ones pass unchanged).
protocol PrefillAnswerMerger: Sendable {
    /// The part per item index, read from the prefill's whole answer (JSON, or an SSE stream).
    func prefillParts(from body: Data) -> [Int: Any]
    /// `json` (an answer or one event's object) with the pending parts of its items merged in, or nil
    /// when none of its items took one; merged items leave `pending`.
    func merge(_ json: Any, pending: inout [Int: Any]) -> Any?
    /// Whether a stream event may take a part, judged without parsing it (every event is parsed otherwise).
    func mayTake(event: String) -> Bool
    /// The part goes into an item's first event, so a stream waits for the prefill's answer before it starts.
    var mergesIntoFirstEvent: Bool { get }
}

extension PrefillAnswerMerger {
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

    /// One stream event with the pending parts merged in, if its item still needs them.
    func mayTake(event: String) -> Bool { true }
    var mergesIntoFirstEvent: Bool { true }

    func rewrite(event: String, pending: inout [Int: Any]) -> String {
        guard !pending.isEmpty, mayTake(event: event), let data = SSEEventSplitter.data(of: event), let json = JSONParser.foundationObject(from: Data(data.utf8)),
              let merged = merge(json, pending: &pending) else { return event }
        return "data: " + String(decoding: JSON.encode(merged), as: UTF8.self)
    }
}
