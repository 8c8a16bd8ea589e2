import ByteExactJSON
import AsyncHTTPClient
import Foundation
import Hummingbird
import NIOCore
import Server

/// Prefill/decode mode: each attempt sends the same body (plus bootstrap
/// fields) to a prefill and a decode at once. The client gets the decode's
/// response once the prefill's has been read to the end — a prefill must
/// always finish its response — except a stream that needs nothing of the
/// prefill in its first event: it is relayed as soon as both heads are in
/// (the decode's comes only once the KV arrived), and the prefill's body,
/// still read in full, joins the final event (its phases) or, if it
/// failed, ends the stream with an error event. When either half fails (no
/// connection, a 5xx, or an overload answer) while the other still works, the
/// survivor is told to abort the request by `rid`, and the request is tried
/// again on a new pair; any other 4xx from either half goes back to the client
/// as it is.
struct PDForwarder: Sendable {
    let core: RouterCore

    /// The prefill's answer: read in full, or a 2xx head whose body is still being read.
    private enum PrefillAnswer: Sendable {
        case complete(UpstreamReply)
        case streaming(rest: Task<UpstreamReply, any Error>)
    }

    /// What one half of an attempt produced.
    private enum Half: Sendable {
        case prefill(Result<PrefillAnswer, any Error>)
        case decode(Result<HTTPClientResponse, any Error>)
    }

    /// How an attempt ended.
    private enum Outcome: Sendable {
        /// Both halves answered 2xx: the prefill in full (or its head), the decode with its head.
        case ready(prefill: PrefillAnswer, decode: HTTPClientResponse)
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
            if case .ready(.streaming(let rest), _) = outcome {
                Task { _ = try? await rest.value; prefill.end() }
            } else {
                prefill.end()
            }
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
            case .ready(.streaming(let rest), let response):
                core.recordStatus(decode, Int(response.status.code))
                return relayEarly(response, from: decode, prefill: prefill, rest: rest, mergers: plan.mergers)
            case .ready(.complete(let prefillReply), let response):
                let parts = PrefillParts(plan.mergers, prefillBody: Data(prefillReply.body.readableBytesView))
                if plan.isStream && response.headers.first(name: "content-type")?.hasPrefix("text/event-stream") == true {
                    core.recordStatus(decode, Int(response.status.code))
                    guard !parts.isEmpty else { return core.relay(response, from: decode, role: "Decode worker") }
                    return core.relay(response, from: decode, role: "Decode worker", makeRewriter: {
                        var pending = parts
                        return { event in pending.rewrite(event: event) }
                    })
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
                if !parts.isEmpty, let json = reply.json {
                    reply = reply.replacingBody(ByteBuffer(bytes: JSON.encode(parts.merged(into: json))))
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
        let (outcome, orphan) = await runHalves(request, body: body, plan: plan, prefill: prefill, decode: decode, timeoutSeconds: timeoutSeconds)
        if let orphan { await core.abortOrphan(orphan, rids: plan.rids) }
        return outcome
    }

    /// Both halves of one attempt; the outcome, and the half left working when the other failed.
    private func runHalves(_ request: RoutedRequest, body: ByteBuffer, plan: PDRequestPlan, prefill: Worker, decode: Worker,
                           timeoutSeconds: Double) async -> (Outcome, orphan: Worker?) {
        let client = core.client, core = self.core
        let relaysEarly = plan.relaysBeforePrefillEnds
        let headers = request.headers
        let prefillURL = request.url(on: prefill), decodeURL = request.url(on: decode)
        return await withTaskGroup(of: Half.self) { group -> (Outcome, orphan: Worker?) in
            group.addTask {
                do {
                    let response = try await client.send(.POST, prefillURL, headers: headers, body: body, timeoutSeconds: timeoutSeconds)
                    if relaysEarly, (200..<300).contains(Int(response.status.code)) {
                        let rest = Task {
                            do {
                                let reply = UpstreamReply(response, body: try await client.collect(response, limit: 1 << 30, timeoutSeconds: timeoutSeconds))
                                core.recordReply(prefill, reply)
                                return reply
                            } catch {
                                // Cancelled: the attempt failed elsewhere, which is not this worker's fault.
                                if !Task.isCancelled { core.recordFailure(prefill, error) }
                                throw error
                            }
                        }
                        return .prefill(.success(.streaming(rest: rest)))
                    }
                    let bytes = try await client.collect(response, limit: 1 << 30, timeoutSeconds: timeoutSeconds)
                    return .prefill(.success(.complete(UpstreamReply(response, body: bytes))))
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
            var prefillAnswer: PrefillAnswer?
            var decodeResponse: HTTPClientResponse?
            // Ends the attempt early: the call of the half still working is dropped (and it is told to abort).
            func settle(_ outcome: Outcome, orphan: Worker?) -> (Outcome, orphan: Worker?) {
                group.cancelAll()
                if case .streaming(let rest)? = prefillAnswer { rest.cancel() }
                return (outcome, orphan)
            }
            /// The prefill still works unless its answer was read in full.
            var prefillOrphan: Worker? {
                if case .complete? = prefillAnswer { return nil }
                return prefill
            }
            while let half = await group.next() {
                switch half {
                case .prefill(.failure(let error)):
                    core.recordFailure(prefill, error)
                    return settle(.failed(worker: prefill, error: RouterCore.gatewayError(error, worker: prefill), reply: nil, retryable: !Self.isTimeout(error)),
                                  orphan: decode)
                case .prefill(.success(.complete(let reply))):
                    core.recordReply(prefill, reply)
                    if reply.isServerError || reply.isOverload { return settle(.failed(worker: prefill, error: nil, reply: reply, retryable: true), orphan: decode) }
                    if !reply.isSuccess { return settle(.refused(reply), orphan: decode) }
                    prefillAnswer = .complete(reply)
                case .prefill(.success(let answer)):
                    prefillAnswer = answer
                case .decode(.failure(let error)):
                    core.recordFailure(decode, error)
                    return settle(.failed(worker: decode, error: RouterCore.gatewayError(error, worker: decode), reply: nil, retryable: !Self.isTimeout(error)),
                                  orphan: prefillOrphan)
                case .decode(.success(let response)):
                    let status = Int(response.status.code)
                    guard status < 400 else {
                        let bytes = (try? await client.collect(response, limit: 16 << 20, timeoutSeconds: 30)) ?? ByteBuffer()
                        let reply = UpstreamReply(response, body: bytes)
                        core.recordReply(decode, reply)
                        let orphan = prefillOrphan
                        return reply.isServerError || reply.isOverload ? settle(.failed(worker: decode, error: nil, reply: reply, retryable: true), orphan: orphan)
                            : settle(.refused(reply), orphan: orphan)
                    }
                    decodeResponse = response
                }
            }
            return (.ready(prefill: prefillAnswer!, decode: decodeResponse!), nil)
        }
    }

    /// Relays a decode stream whose prefill is still answering: events pass
    /// at once; the final one (the first a merger may take, or `[DONE]`)
    /// waits for the prefill's whole answer, takes what the mergers find in
    /// it, or — if the prefill failed — is preceded by an error event.
    private func relayEarly(_ response: HTTPClientResponse, from decode: Worker, prefill: Worker, rest: Task<UpstreamReply, any Error>,
                            mergers: [any PrefillAnswerMerger]) -> Response {
        core.relay(response, from: decode, role: "Decode worker", onEnd: { rest.cancel() }, makeRewriter: {
            var pending: PrefillParts?
            var failure: APIError?
            return { event in
                let isDone = event.hasPrefix("data: [DONE]")
                if pending == nil, failure == nil, isDone || mergers.contains(where: { $0.mayTake(event: event) }) {
                    do {
                        let reply = try await rest.value
                        if reply.isSuccess {
                            pending = PrefillParts(mergers, prefillBody: Data(reply.body.readableBytesView))
                        } else {
                            failure = APIError(.badGateway, type: "upstream_error", "Prefill worker \(prefill.url) answered \(reply.status) after the stream started: \(reply.text.prefix(500))")
                        }
                    } catch {
                        failure = RouterCore.gatewayError(error, worker: prefill)
                    }
                }
                if isDone, let failure { return "data: " + String(decoding: JSON.encode(failure.body), as: UTF8.self) + "\n\n" + event }
                return pending?.rewrite(event: event) ?? event
            }
        })
    }

    private static func isTimeout(_ error: any Error) -> Bool {
        if case .timedOut? = error as? UpstreamFailure { return true }
        return false
    }
}
