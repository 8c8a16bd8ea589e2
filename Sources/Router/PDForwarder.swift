import ByteExactJSON
import AsyncHTTPClient
import Foundation
import Hummingbird
import NIOCore
import Server

/// Prefill/decode mode: each attempt sends the same body (plus bootstrap
/// fields) to a prefill and a decode at once. The client gets the decode's
/// response, but only once the prefill's has been read to the end — a
/// prefill must always finish its response. When either half fails (no
/// connection, a 5xx, or an overload answer) while the other still works, the
/// survivor is told to abort the request by `rid`, and the request is tried
/// again on a new pair; any other 4xx from either half goes back to the client
/// as it is.
struct PDForwarder: Sendable {
    let core: RouterCore

    /// What one half of an attempt produced.
    private enum Half: Sendable {
        case prefill(Result<UpstreamReply, any Error>)
        case decode(Result<HTTPClientResponse, any Error>)
    }

    /// How an attempt ended.
    private enum Outcome: Sendable {
        /// Both halves answered 2xx: the prefill in full, the decode with its head.
        case ready(prefill: UpstreamReply, decode: HTTPClientResponse)
        /// `worker` is broken or full; another pair may do better (unless it timed out).
        case failed(worker: Worker, error: APIError?, reply: UpstreamReply?, retryable: Bool)
        /// A half refused the request itself (4xx): the client's answer.
        case refused(UpstreamReply)
    }

    func forward(_ request: RoutedRequest, plan: PDRequestPlan) async throws -> Response {
        let retry = core.configuration.retry
        let deadline = ContinuousClock.now + .seconds(core.configuration.requestTimeoutSeconds)
        var excluded = Set<String>(), full = Set<String>()
        var lastError: APIError?
        var lastReply: UpstreamReply?
        attempts: for attempt in 1...max(1, retry.maxAttempts) {
            if attempt > 1 {
                core.metrics.retry(route: core.metrics.route(request.route))
                try await Task.sleep(for: .seconds(retry.backoff(beforeAttempt: attempt)))
            }
            guard let prefill = core.pick(.prefill, key: request.routingKey, excluding: excluded, full: full) else {
                if lastError == nil && lastReply == nil { throw core.noWorker(.prefill) }
                break attempts
            }
            guard let decode = core.pick(.decode, key: request.routingKey, excluding: excluded, full: full) else {
                if lastError == nil && lastReply == nil { throw core.noWorker(.decode) }
                break attempts
            }
            let body = plan.body(prefill: prefill.spec)
            let remaining = max(1, (deadline - ContinuousClock.now).inSeconds)
            prefill.begin()
            decode.begin()
            let outcome = await runAttempt(request, body: body, plan: plan, prefill: prefill, decode: decode, timeoutSeconds: remaining)
            prefill.end()
            switch outcome {
            case .refused(let reply):
                decode.end()
                return RouterCore.response(reply)
            case .failed(let worker, let error, let reply, let retryable):
                decode.end()
                if reply?.isOverload == true { full.insert(worker.url) } else { excluded.insert(worker.url) }
                (lastError, lastReply) = (error, reply)
                if !retryable { break attempts }
                continue
            case .ready(let prefillReply, let response):
                let prefillBody = Data(prefillReply.body.readableBytesView)
                let parts = plan.mergers.map { $0.prefillParts(from: prefillBody) }
                let merging = zip(plan.mergers, parts).filter { !$0.1.isEmpty }
                if plan.isStream && response.headers.first(name: "content-type")?.hasPrefix("text/event-stream") == true {
                    core.recordStatus(decode, Int(response.status.code))
                    guard !merging.isEmpty else { return core.relay(response, from: decode, role: "Decode worker") }
                    nonisolated(unsafe) let pendingParts = merging
                    return core.relay(response, from: decode, role: "Decode worker") {
                        var pending = pendingParts
                        return { event in
                            pending.indices.reduce(event) { event, i in pending[i].0.rewrite(event: event, pending: &pending[i].1) }
                        }
                    }
                }
                let bytes: ByteBuffer
                do {
                    bytes = try await core.client.collect(response, limit: 1 << 30, timeoutSeconds: max(1, (deadline - .now).inSeconds))
                } catch is CancellationError {
                    decode.end()
                    throw CancellationError()
                } catch {
                    // The prefill is done, so nothing is orphaned; the client has seen nothing, so try again.
                    decode.end()
                    core.recordFailure(decode, error)
                    excluded.insert(decode.url)
                    (lastError, lastReply) = (RouterCore.gatewayError(error, worker: decode), nil)
                    continue
                }
                decode.end()
                core.recordStatus(decode, Int(response.status.code))
                var reply = UpstreamReply(response, body: bytes)
                if !merging.isEmpty, var json = reply.json {
                    for (merger, part) in merging {
                        var pending = part
                        json = merger.merge(json, pending: &pending) ?? json
                    }
                    reply = reply.replacingBody(ByteBuffer(bytes: JSON.encode(json)))
                }
                return RouterCore.response(reply)
            }
        }
        if let lastReply { return RouterCore.response(lastReply) }
        throw lastError ?? core.noWorker(.decode)
    }

    /// Runs both halves of one attempt and waits for whichever settles the outcome first.
    private func runAttempt(_ request: RoutedRequest, body: ByteBuffer, plan: PDRequestPlan, prefill: Worker, decode: Worker,
                         timeoutSeconds: Double) async -> Outcome {
        let (outcome, orphan) = await runHalves(request, body: body, prefill: prefill, decode: decode, timeoutSeconds: timeoutSeconds)
        if let orphan { await core.abortOrphan(orphan, rids: plan.rids) }
        return outcome
    }

    /// Both halves of one attempt; the outcome, and the half left working when the other failed.
    private func runHalves(_ request: RoutedRequest, body: ByteBuffer, prefill: Worker, decode: Worker,
                           timeoutSeconds: Double) async -> (Outcome, orphan: Worker?) {
        let client = core.client, core = self.core
        let headers = request.headers
        let prefillURL = request.url(on: prefill), decodeURL = request.url(on: decode)
        return await withTaskGroup(of: Half.self) { group -> (Outcome, orphan: Worker?) in
            group.addTask {
                do {
                    let response = try await client.send(.POST, prefillURL, headers: headers, body: body, timeoutSeconds: timeoutSeconds)
                    let bytes = try await client.collect(response, limit: 1 << 30, timeoutSeconds: timeoutSeconds)
                    return .prefill(.success(UpstreamReply(response, body: bytes)))
                } catch {
                    return .prefill(.failure(error))
                }
            }
            group.addTask {
                do {
                    return .decode(.success(try await client.send(.POST, decodeURL, headers: headers, body: body, timeoutSeconds: timeoutSeconds)))
                } catch {
                    return .decode(.failure(error))
                }
            }
            var prefillReply: UpstreamReply?
            var decodeResponse: HTTPClientResponse?
            // Ends the attempt early: the call of the half still working is dropped (and it is told to abort).
            func settle(_ outcome: Outcome, orphan: Worker?) -> (Outcome, orphan: Worker?) {
                group.cancelAll()
                return (outcome, orphan)
            }
            while let half = await group.next() {
                switch half {
                case .prefill(.failure(let error)):
                    core.recordFailure(prefill, error)
                    return settle(.failed(worker: prefill, error: RouterCore.gatewayError(error, worker: prefill), reply: nil, retryable: !Self.isTimeout(error)),
                                  orphan: decode)
                case .prefill(.success(let reply)):
                    core.recordReply(prefill, reply)
                    if reply.isServerError || reply.isOverload { return settle(.failed(worker: prefill, error: nil, reply: reply, retryable: true), orphan: decode) }
                    if !reply.isSuccess { return settle(.refused(reply), orphan: decode) }
                    prefillReply = reply
                case .decode(.failure(let error)):
                    core.recordFailure(decode, error)
                    return settle(.failed(worker: decode, error: RouterCore.gatewayError(error, worker: decode), reply: nil, retryable: !Self.isTimeout(error)),
                                  orphan: prefillReply == nil ? prefill : nil)
                case .decode(.success(let response)):
                    let status = Int(response.status.code)
                    guard status < 400 else {
                        let bytes = (try? await client.collect(response, limit: 16 << 20, timeoutSeconds: 30)) ?? ByteBuffer()
                        let reply = UpstreamReply(response, body: bytes)
                        core.recordReply(decode, reply)
                        let orphan = prefillReply == nil ? prefill : nil
                        return reply.isServerError || reply.isOverload ? settle(.failed(worker: decode, error: nil, reply: reply, retryable: true), orphan: orphan)
                            : settle(.refused(reply), orphan: orphan)
                    }
                    decodeResponse = response
                }
            }
            return (.ready(prefill: prefillReply!, decode: decodeResponse!), nil)
        }
    }

    private static func isTimeout(_ error: any Error) -> Bool {
        if case .timedOut? = error as? UpstreamFailure { return true }
        return false
    }
}
