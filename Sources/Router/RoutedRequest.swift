import NIOCore
import NIOHTTP1

/// A client request the router is about to send on: what to send, and the
/// facts policies need.
struct RoutedRequest: Sendable {
    /// The path, also the metrics label (`/generate`, `/v1/chat/completions`, …).
    let route: String
    let method: HTTPMethod
    /// The query string, without `?`, sent on unchanged.
    let query: String?
    let headers: HTTPHeaders
    let body: ByteBuffer?
    /// Prompt text for prefix-affinity policies.
    let routingKey: String

    func url(on worker: Worker) -> String {
        worker.url + route + (query.map { $0.isEmpty ? "" : "?" + $0 } ?? "")
    }
}
