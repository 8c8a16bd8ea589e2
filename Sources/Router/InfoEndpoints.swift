import ByteExactJSON
import Foundation
import Hummingbird
import NIOCore
import NIOHTTP1
import Server

/// Endpoints answered from the workers without a policy: information
/// (from one ready prefill or regular worker), health, load, cache flush and
/// abort (from all of them).
struct InfoEndpoints: Sendable {
    let core: RouterCore

    private var timeout: Double { core.configuration.health.timeoutSeconds }

    /// The workers that describe the model and server: in PD mode the prefills, as sglang-router
    /// asks its first prefill (so `disaggregation_mode` reads "prefill" through either router).
    private var describingRole: WorkerRole { core.configuration.pdDisaggregation ? .prefill : .regular }

    /// Forwards a GET to the first ready describing worker that answers.
    func forwardToOne(_ request: Request) async throws -> Response {
        let candidates = core.registry.available(describingRole)
        guard !candidates.isEmpty else { throw core.noWorker(describingRole) }
        var lastError: (any Error)?
        for worker in candidates {
            do {
                let reply = try await core.client.call(.GET, worker.url + request.uri.path,
                                                       headers: RouterCore.forwardable(request.headers, contentType: nil), timeoutSeconds: timeout)
                if reply.isServerError { lastError = UpstreamFailure.unreachable("answered \(reply.status)"); continue }
                return RouterCore.response(reply)
            } catch {
                lastError = error
            }
        }
        throw RouterCore.gatewayError(lastError ?? UpstreamFailure.unreachable("no answer"), worker: candidates.last!)
    }

    /// `/readiness` (sglang-router's probe): 200 when a request could be
    /// served now — in PD mode a healthy prefill (its bootstrap server
    /// answering, as the health check requires) and a healthy decode; else 503.
    func readiness() -> Response {
        let roles: [WorkerRole] = core.configuration.pdDisaggregation ? [.prefill, .decode] : [.regular]
        var counts: [String: Any] = [:]
        var missing: [String] = []
        for role in roles {
            let healthy = core.registry.available(role).count
            counts[role.rawValue] = ["healthy": healthy, "total": core.registry.workers(role).count]
            if healthy == 0 { missing.append(role.rawValue) }
        }
        guard missing.isEmpty else {
            var error = APIError(.serviceUnavailable, type: "not_ready", "Insufficient healthy workers: no healthy \(missing.joined(separator: " or ")) worker.")
            error.retryAfterSeconds = 1
            return error.response
        }
        return JSON.response(["status": "ready", "workers": counts])
    }

    /// `/health_generate`: every ready worker must generate; 503 names those that did not.
    func healthGenerate(_ request: Request) async -> Response {
        let workers = core.registry.all.filter(\.isReady)
        guard !workers.isEmpty else { return APIError(.serviceUnavailable, type: "unhealthy", "No worker is ready.").response }
        let results = await fanOut(workers, .GET, "/health_generate", headers: request.headers)
        let failed = results.filter { !$0.ok }
        guard failed.isEmpty else {
            return APIError(.serviceUnavailable, type: "unhealthy",
                            "Not generating: " + failed.map { "\($0.worker.url) (\($0.detail))" }.joined(separator: ", ")).response
        }
        return Response(status: .ok)
    }

    /// `/get_load`: the workers' own arrays, concatenated, each rank tagged
    /// with its worker — still a JSON array of objects with `num_tokens`, so
    /// a router in front of this one reads it the same way.
    func load(_ request: Request) async -> Response {
        let workers = core.registry.all.filter(\.isReady)
        let results = await fanOut(workers, .GET, "/get_load", headers: request.headers)
        var ranks: [[String: Any]] = []
        for result in results where result.ok {
            let list = (result.reply?.json as? [[String: Any]]) ?? []
            for var rank in list {
                rank["worker"] = result.worker.url
                rank["mode"] = result.worker.role.rawValue
                ranks.append(rank)
            }
        }
        return JSON.response(ranks)
    }

    /// `/flush_cache`, `/abort_request`, `/start_profile`, `/stop_profile`: sent to every worker; 502 when any failed.
    func broadcast(_ request: Request, path: String) async throws -> Response {
        var body: Any?
        if request.method == .post {
            let buffer = try await request.body.collect(upTo: 1 << 20)
            if buffer.readableBytes > 0 { body = try RequestDocument.parse(Data(buffer.readableBytesView)).foundationObject }
        }
        let workers = core.registry.all
        let results = await fanOut(workers, request.method == .get ? .GET : .POST, path, json: body, headers: request.headers)
        let failed = results.filter { !$0.ok }
        var summary: [String: Any] = [
            "succeeded": results.filter(\.ok).map { $0.worker.url },
            "failed": failed.map { ["url": $0.worker.url, "error": $0.detail] },
            "responses": Dictionary(results.compactMap { r in r.reply.map { (r.worker.url, ($0.json ?? $0.text) as Any) } }, uniquingKeysWith: { a, _ in a }),
        ]
        guard !failed.isEmpty else { return JSON.response(summary, status: .ok) }
        // Every worker refused the request alike (a 400 for a bad field, a 409 for a profile already running):
        // the client's fault, so the client gets that status and the first worker's error, not a 502.
        let statuses = Set(failed.map { $0.reply?.status ?? 502 })
        if failed.count == results.count, statuses.count == 1, let status = statuses.first, (400..<500).contains(status) {
            summary["error"] = (failed[0].reply?.json as? [String: Any])?["error"]
            return JSON.response(summary, status: HTTPResponse.Status(code: status))
        }
        return JSON.response(summary, status: .badGateway)
    }

    struct FanOutResult: @unchecked Sendable {
        let worker: Worker
        let reply: UpstreamReply?
        let detail: String
        var ok: Bool { reply?.isSuccess == true }
    }

    /// One call to each worker, concurrently; the client's Authorization travels along.
    private func fanOut(_ workers: [Worker], _ method: HTTPMethod, _ path: String, json: Any? = nil, headers: HTTPFields) async -> [FanOutResult] {
        let client = core.client, timeout = self.timeout
        let forwarded = RouterCore.forwardable(headers, contentType: nil)
        let body = json.flatMap { try? JSONSerialization.data(withJSONObject: $0) }.map { ByteBuffer(bytes: $0) }
        return await withTaskGroup(of: FanOutResult.self) { group in
            for worker in workers {
                group.addTask {
                    do {
                        let reply = try await client.call(method, worker.url + path, jsonBody: body, headers: forwarded, timeoutSeconds: timeout)
                        return FanOutResult(worker: worker, reply: reply, detail: reply.isSuccess ? "ok" : "answered \(reply.status)")
                    } catch {
                        return FanOutResult(worker: worker, reply: nil, detail: UpstreamClient.describe(error))
                    }
                }
            }
            var results: [FanOutResult] = []
            for await result in group { results.append(result) }
            return results.sorted { $0.worker.url < $1.worker.url }
        }
    }
}
