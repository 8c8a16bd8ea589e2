import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Server
import Tracing

/// The router's HTTP client to workers: one connection pool for all of them,
/// sized for many concurrent streams (AsyncHTTPClient's default of 8
/// connections per host would queue the ninth streaming request).
final class UpstreamClient: Sendable {
    private let http: HTTPClient
    /// Sent on the calls the router makes on its own behalf; forwarded client
    /// requests carry the client's own Authorization header instead.
    let apiKey: String?

    init(apiKey: String?, connectTimeoutSeconds: Double = 5) {
        var configuration = HTTPClient.Configuration(
            timeout: .init(connect: .milliseconds(Int64(connectTimeoutSeconds * 1000))),
            connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 4096)
        )
        configuration.decompression = .disabled
        // A refused connection should fail now: the router retries on another
        // worker, instead of the pool retrying the dead one until the connect timeout.
        configuration.connectionPool.retryConnectionEstablishment = false
        // Spans are made in `send`, for calls inside a traced request only (not for health probes).
        configuration.tracing.tracer = nil
        http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
        self.apiKey = apiKey
    }

    func shutdown() async {
        try? await http.shutdown()
    }

    /// Sends a request and returns as soon as the response head arrived; the
    /// caller reads (or drops, which closes the connection) the body.
    /// Inside a traced request, the call is a client span (until the response
    /// head) whose context travels to the worker in `traceparent`.
    func send(_ method: HTTPMethod, _ url: String, headers: HTTPHeaders, body: ByteBuffer?, timeoutSeconds: Double) async throws -> HTTPClientResponse {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers = headers
        if let body { request.body = .bytes(body) }
        let span = ServiceContext.current.map { startSpan("\(method.rawValue) \(URLComponents(string: url)?.path ?? url)", context: $0, ofKind: .client) }
        defer { span?.end() }
        if let span {
            span.updateAttributes { attributes in
                attributes["http.request.method"] = method.rawValue
                attributes["url.full"] = url
            }
            InstrumentationSystem.instrument.inject(span.context, into: &request.headers, using: HTTPHeadersInjector())
        }
        do {
            let response = try await http.execute(request, timeout: .milliseconds(Int64(timeoutSeconds * 1000)))
            span?.attributes["http.response.status_code"] = Int(response.status.code)
            return response
        } catch is CancellationError {
            throw CancellationError()
        } catch let error as HTTPClientError where error == .deadlineExceeded {
            throw UpstreamFailure.timedOut(timeoutSeconds)
        } catch {
            throw UpstreamFailure.unreachable(Self.describe(error))
        }
    }

    /// Reads a response body in full, within `timeoutSeconds`.
    func collect(_ response: HTTPClientResponse, limit: Int, timeoutSeconds: Double) async throws -> ByteBuffer {
        do {
            return try await TimeLimit.run(seconds: timeoutSeconds) { try await response.body.collect(upTo: limit) }
        } catch let exceeded as TimeLimit.Exceeded {
            throw UpstreamFailure.timedOut(exceeded.seconds)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw UpstreamFailure.unreachable("response body broke off: \(Self.describe(error))")
        }
    }

    /// A complete call the router makes itself (health, load, aborts, fan-outs).
    func call(_ method: HTTPMethod, _ url: String, json: Any? = nil, headers extra: HTTPHeaders = [:], timeoutSeconds: Double) async throws -> UpstreamReply {
        let body = try json.map { ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: $0)) }
        return try await call(method, url, jsonBody: body, headers: extra, timeoutSeconds: timeoutSeconds)
    }

    /// `call` with the JSON body already encoded (it can cross into child tasks).
    func call(_ method: HTTPMethod, _ url: String, jsonBody body: ByteBuffer?, headers extra: HTTPHeaders = [:], timeoutSeconds: Double) async throws -> UpstreamReply {
        var headers = extra
        if headers["authorization"].isEmpty, let apiKey { headers.add(name: "authorization", value: "Bearer \(apiKey)") }
        if body != nil { headers.replaceOrAdd(name: "content-type", value: "application/json") }
        let (sentHeaders, sentBody) = (headers, body)
        do {
            return try await TimeLimit.run(seconds: timeoutSeconds) {
                let response = try await self.send(method, url, headers: sentHeaders, body: sentBody, timeoutSeconds: timeoutSeconds)
                let bytes = try await self.collect(response, limit: 64 << 20, timeoutSeconds: timeoutSeconds)
                return UpstreamReply(response, body: bytes)
            }
        } catch let exceeded as TimeLimit.Exceeded {
            throw UpstreamFailure.timedOut(exceeded.seconds)
        }
    }

    static func describe(_ error: any Error) -> String {
        if let failure = error as? UpstreamFailure { return failure.description }
        return String(describing: error)
    }
}
