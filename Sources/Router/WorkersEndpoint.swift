import ByteExactJSON
import Foundation
import Hummingbird
import NIOCore
import Server

/// `GET /workers` (list), `POST /workers` (add `{url, mode, bootstrap_port?}`)
/// and `DELETE /workers` (`{url}` or `?url=`): the worker set at run time.
struct WorkersEndpoint: Sendable {
    let core: RouterCore

    func list() -> Response {
        JSON.response([
            "mode": core.configuration.pdDisaggregation ? "pd" : "regular",
            "workers": core.registry.all.map { $0.summary() },
        ] as [String: Any])
    }

    func add(_ request: Request) async throws -> Response {
        let body = try await object(request)
        guard let url = body["url"] as? String else { throw APIError.invalid("'url' (a string) is required.", param: "url") }
        // sglang-router spells the role `worker_type`; accept both.
        let modeValue = body["mode"] ?? body["worker_type"]
        let role: WorkerRole
        switch modeValue {
        case nil, is NSNull: role = core.configuration.defaultRole
        case let text as String:
            guard let parsed = WorkerRole(rawValue: text) else {
                throw APIError.invalid("'mode' must be prefill, decode or regular.", param: "mode")
            }
            role = parsed
        default: throw APIError.invalid("'mode' must be prefill, decode or regular.", param: "mode")
        }
        var port: Int?
        switch body["bootstrap_port"] {
        case nil, is NSNull: port = nil
        case let value?:
            guard let number = JSONScalar.integer(value), (1...65535).contains(number) else {
                throw APIError.invalid("'bootstrap_port' must be a port number (1-65535) or null.", param: "bootstrap_port")
            }
            port = number
        }
        let worker: Worker
        do {
            let spec = try WorkerSpec(url: url, role: role, bootstrapPort: port)
            if core.registry.all.contains(where: { $0.url == spec.url }) {
                throw APIError(.conflict, type: "conflict", "Worker \(spec.url) is already registered.", param: "url")
            }
            worker = try await core.addWorker(spec)
        } catch let error as RouterSetupError {
            throw APIError.invalid(error.message, param: "url")
        }
        return JSON.response(worker.summary(), status: .created)
    }

    func remove(_ request: Request) async throws -> Response {
        var url = request.uri.queryParameters["url"].map(String.init)
        if url == nil {
            url = try await object(request)["url"] as? String
        }
        guard let url else { throw APIError.invalid("Give the worker's 'url' in the body or as ?url=.", param: "url") }
        let normalized = (try? WorkerSpec(url: url, role: .regular).url) ?? url
        guard let removed = core.removeWorker(url: normalized) else {
            throw APIError(.notFound, type: "not_found", "No worker \(normalized) is registered.", param: "url")
        }
        return JSON.response(["removed": removed.url, "mode": removed.role.rawValue])
    }

    private func object(_ request: Request) async throws -> [String: Any] {
        let buffer = try await request.body.collect(upTo: 1 << 20)
        guard buffer.readableBytes > 0 else { return [:] }
        guard let object = try RequestDocument.parse(Data(buffer.readableBytesView)).foundationObject as? [String: Any] else {
            throw APIError.invalid("The request body must be a JSON object.")
        }
        return object
    }
}
