import AsyncHTTPClient
import Foundation
import Hummingbird
import NIOCore
import Server

/// Plain load balancing: one worker per request, chosen by policy; on no
/// connection, a 5xx or an overload answer the request goes to another worker
/// (with backoff) until the attempts or the untried workers run out. Streams
/// pass through chunk by chunk.
struct PlainForwarder: Sendable {
    let core: RouterCore

    func forward(_ request: RoutedRequest) async throws -> Response {
        let retry = core.configuration.retry
        let timeout = core.configuration.requestTimeoutSeconds
        var excluded = Set<String>(), full = Set<String>()
        var lastError: APIError?
        var lastReply: UpstreamReply?
        for attempt in 1...max(1, retry.maxAttempts) {
            if attempt > 1 {
                core.metrics.retry(route: core.metrics.route(request.route))
                try await Task.sleep(for: .seconds(retry.backoff(beforeAttempt: attempt)))
            }
            guard let worker = core.pick(.regular, key: request.routingKey, excluding: excluded, full: full) else {
                break
            }
            worker.begin()
            // No answer (or half of one): try another worker, remembering why this one failed.
            func failed(_ error: Error) {
                worker.end()
                core.recordFailure(worker, error)
                excluded.insert(worker.url)
                lastError = RouterCore.gatewayError(error, worker: worker)
                lastReply = nil
            }
            let response: HTTPClientResponse
            do {
                response = try await core.client.send(request.method, request.url(on: worker), headers: request.headers, body: request.body,
                                                      timeoutSeconds: timeout)
            } catch is CancellationError {
                worker.end()
                throw CancellationError()
            } catch {
                failed(error)
                if case .timedOut? = error as? UpstreamFailure { break }
                continue
            }
            let status = Int(response.status.code)
            let isStream = response.headers.first(name: "content-type")?.hasPrefix("text/event-stream") == true
            if status < 500 && isStream {
                core.recordStatus(worker, status)
                return core.relay(response, from: worker, role: "Worker")
            }
            // Whole JSON answers are read here, so a worker dying half-way is retried like one that never answered.
            let body: ByteBuffer
            do {
                body = try await core.client.collect(response, limit: 1 << 30, timeoutSeconds: timeout)
            } catch is CancellationError {
                worker.end()
                throw CancellationError()
            } catch {
                failed(error)
                continue
            }
            worker.end()
            let reply = UpstreamReply(response, body: body)
            core.recordReply(worker, reply)
            // A broken worker (5xx) or a full one (overload): another worker may serve it.
            if reply.isServerError || reply.isOverload {
                if reply.isOverload { full.insert(worker.url) } else { excluded.insert(worker.url) }
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
}
