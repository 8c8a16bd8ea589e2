import AsyncHTTPClient
import Foundation
import Hummingbird
import NIOCore
import Server

/// Plain load balancing: one worker per request, chosen by policy; on no
/// connection or a 5xx the request goes to another worker (with backoff)
/// until the attempts run out. Streams pass through chunk by chunk.
struct PlainForwarder: Sendable {
    let core: RouterCore

    func forward(_ request: RoutedRequest) async throws -> Response {
        let retry = core.configuration.retry
        let timeout = core.configuration.requestTimeoutSeconds
        var excluded = Set<String>()
        var lastError: APIError?
        var lastReply: UpstreamReply?
        for attempt in 1...max(1, retry.maxAttempts) {
            if attempt > 1 {
                core.metrics.retry(route: core.metrics.route(request.route))
                try await Task.sleep(for: .seconds(retry.backoff(beforeAttempt: attempt)))
            }
            guard let worker = core.pick(.regular, key: request.routingKey, excluding: excluded) else {
                break
            }
            worker.begin()
            let response: HTTPClientResponse
            do {
                response = try await core.client.send(request.method, request.url(on: worker), headers: request.headers, body: request.body,
                                                      timeoutSeconds: timeout)
            } catch is CancellationError {
                worker.end()
                throw CancellationError()
            } catch {
                worker.end()
                core.recordFailure(worker, error)
                excluded.insert(worker.url)
                lastError = RouterCore.gatewayError(error, worker: worker)
                lastReply = nil
                if case .timedOut? = error as? UpstreamFailure { break }
                continue
            }
            let status = Int(response.status.code)
            let isStream = response.headers.first(name: "content-type")?.hasPrefix("text/event-stream") == true
            if status < 500 && isStream {
                core.recordStatus(worker, status)
                return stream(response, worker: worker)
            }
            // Whole JSON answers are read here, so a worker dying half-way is retried like one that never answered.
            let body: ByteBuffer
            do {
                body = try await core.client.collect(response, limit: 1 << 30, timeoutSeconds: timeout)
            } catch is CancellationError {
                worker.end()
                throw CancellationError()
            } catch {
                worker.end()
                core.recordFailure(worker, error)
                excluded.insert(worker.url)
                lastError = RouterCore.gatewayError(error, worker: worker)
                lastReply = nil
                continue
            }
            worker.end()
            core.recordStatus(worker, status)
            let reply = UpstreamReply(status: status, contentType: response.headers.first(name: "content-type"), body: body)
            if status >= 500 {
                excluded.insert(worker.url)
                lastReply = reply
                lastError = nil
                continue
            }
            var headers = RouterCore.returnable(response.headers)
            headers[.contentLength] = nil
            return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: body))
        }
        // Out of attempts: the last worker's own 5xx answer says most; else why nothing answered.
        if let lastReply { return RouterCore.response(lastReply) }
        throw lastError ?? core.noWorker(.regular)
    }

    /// Relays an event stream; a break after the 200 head becomes an SSE error event.
    private func stream(_ response: HTTPClientResponse, worker: Worker) -> Response {
        let core = self.core
        return Response(status: .init(code: Int(response.status.code)), headers: RouterCore.returnable(response.headers), body: ResponseBody { writer in
            defer { worker.end() }
            var upstream = response.body.makeAsyncIterator()
            while true {
                let chunk: ByteBuffer?
                do {
                    chunk = try await upstream.next()
                } catch {
                    // The worker broke off after the 200 head: say so in-band, never by a changed status.
                    core.recordFailure(worker, UpstreamFailure.unreachable("stream broke off: \(error)"))
                    try await writer.write(RouterCore.sseError(APIError(.badGateway, type: "upstream_error",
                                                                        "Worker \(worker.url) broke off the stream: \(error)")))
                    break
                }
                guard let chunk else { break }
                // A client that left makes this throw, which drops the upstream stream and so aborts the request there.
                try await writer.write(chunk)
            }
            try await writer.finish(nil)
        })
    }
}
