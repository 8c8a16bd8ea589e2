import AsyncHTTPClient
import Hummingbird
import NIOCore
import Server

extension RouterCore {
    /// Relays a worker's event stream to the client. A break after the 200
    /// head becomes an SSE error event (never a changed status). With
    /// `makeRewriter`, each complete event passes through a fresh rewriter
    /// (PD mode merges what the prefill answered this way); `onEnd` runs
    /// when the relay stops, however it stops.
    func relay(_ response: HTTPClientResponse, from worker: Worker, role: String, onEnd: (@Sendable () -> Void)? = nil,
               makeRewriter: (@Sendable () -> (String) async -> String)? = nil) -> Response {
        let core = self
        return Response(status: .init(code: Int(response.status.code)), headers: RouterCore.returnable(response.headers), body: ResponseBody { writer in
            defer {
                worker.end()
                onEnd?()
            }
            let rewrite = makeRewriter?()
            var splitter = SSEEventSplitter()
            var upstream = response.body.makeAsyncIterator()
            while true {
                let chunk: ByteBuffer?
                do {
                    chunk = try await upstream.next()
                } catch {
                    core.recordFailure(worker, UpstreamFailure.unreachable("stream broke off: \(error)"))
                    try await writer.write(RouterCore.sseError(APIError(.badGateway, type: "upstream_error",
                                                                        "\(role) \(worker.url) broke off the stream: \(error)")))
                    break
                }
                guard let chunk else { break }
                // A client that left makes this throw, which drops the upstream stream and so aborts the request there.
                guard let rewrite else {
                    try await writer.write(chunk)
                    continue
                }
                for event in splitter.append(chunk) {
                    try await writer.write(ByteBuffer(string: await rewrite(event) + "\n\n"))
                }
            }
            if let rewrite, let rest = splitter.finish() { try await writer.write(ByteBuffer(string: await rewrite(rest))) }
            try await writer.finish(nil)
        })
    }
}
