import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Sends benchmark requests and times them. One connection pool sized for
/// many concurrent streams: AsyncHTTPClient's default of 8 connections per
/// host would queue the ninth request inside the client and show up as TTFT.
public final class ServingClient: Sendable {
    private let http: HTTPClient
    private let baseURL: String
    private let backend: ServingBackend
    private let model: String?
    private let stream: Bool
    private let timeoutSeconds: Double
    /// Merged into every request body's top level (`--extra-request-body`), as sglang.bench_serving does.
    private nonisolated(unsafe) let extraBody: [String: Any]
    /// Sampling fields every request uses instead of greedy (`--sampling-params`).
    private nonisolated(unsafe) let sampling: [String: Any]
    private let clock = ContinuousClock()

    public init(baseURL: String, backend: ServingBackend, model: String?, stream: Bool, timeoutSeconds: Double,
                extraBody: [String: Any] = [:], sampling: [String: Any] = [:]) {
        self.extraBody = extraBody
        self.sampling = sampling
        var configuration = HTTPClient.Configuration(
            timeout: .init(connect: .seconds(10)),
            connectionPool: .init(idleTimeout: .seconds(120), concurrentHTTP1ConnectionsPerHostSoftLimit: 4096)
        )
        configuration.decompression = .disabled
        http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
        self.baseURL = baseURL
        self.backend = backend
        self.model = model
        self.stream = stream
        self.timeoutSeconds = timeoutSeconds
    }

    public func shutdown() async {
        try? await http.shutdown()
    }

    /// A GET whose JSON object answer is returned (server information).
    public func getJSON(_ path: String) async throws -> [String: Any] {
        let response = try await http.execute(HTTPClientRequest(url: baseURL + path), timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 16 << 20)
        guard response.status == .ok else {
            throw ServingBenchmarkError.server("GET \(path) answered \(response.status.code): \(String(buffer: body).prefix(200))")
        }
        guard let object = try JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any] else {
            throw ServingBenchmarkError.server("GET \(path) did not answer a JSON object")
        }
        return object
    }

    /// Sends one prompt and measures it. Never throws: failures are outcomes.
    public func send(_ prompt: ServingPrompt) async -> ServingRequestOutcome {
        var outcome = ServingRequestOutcome(workloadClass: prompt.workloadClass, promptLength: prompt.promptLength,
                                            requestedOutputLength: prompt.outputLength)
        var request = HTTPClientRequest(url: baseURL + backend.path)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        do {
            let fields = backend.body(for: prompt, model: model, stream: stream, sampling: sampling).merging(extraBody) { $1 }
            let body = try JSONSerialization.data(withJSONObject: fields)
            request.body = .bytes(ByteBuffer(bytes: body))
        } catch {
            outcome.error = "cannot encode the request: \(error)"
            return outcome
        }
        let start = clock.now
        func seconds(since instant: ContinuousClock.Instant) -> Double {
            let d = clock.now - instant
            return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        }
        do {
            let response = try await http.execute(request, timeout: .milliseconds(Int64(timeoutSeconds * 1000)))
            guard response.status == .ok else {
                let text = (try? await response.body.collect(upTo: 1 << 20)).map { String(buffer: $0) } ?? ""
                outcome.error = "HTTP \(response.status.code): \(text.prefix(300))"
                outcome.latency = seconds(since: start)
                return outcome
            }
            var reader = ServingResponseReader(api: backend.api)
            if stream {
                var splitter = SSEDataSplitter()
                var lastTokenAt: Double?
                for try await chunk in response.body {
                    for payload in splitter.feed(chunk.readableBytesView) {
                        let newTokens = try reader.absorbEvent(payload)
                        guard newTokens else { continue }
                        let now = seconds(since: start)
                        if let lastTokenAt { outcome.itls.append(now - lastTokenAt) } else { outcome.ttft = now }
                        lastTokenAt = now
                    }
                }
            } else {
                let body = try await response.body.collect(upTo: 256 << 20)
                try reader.absorbWhole(Array(buffer: body))
            }
            outcome.latency = seconds(since: start)
            if !stream { outcome.ttft = outcome.latency }
            outcome.outputLength = reader.completionTokens ?? reader.tokenChunks
            if let promptTokens = reader.promptTokens { outcome.promptLength = promptTokens }
            outcome.success = reader.tokenChunks > 0 || (!stream && outcome.outputLength > 0)
            if !outcome.success { outcome.error = "the response carried no tokens" }
        } catch {
            outcome.latency = seconds(since: start)
            outcome.error = "\(error)"
        }
        return outcome
    }
}
