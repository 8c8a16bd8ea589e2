import Foundation
import Logging
import OTel
import ServiceLifecycle
import Tracing

/// `--otlp-traces-endpoint` (vLLM's and SGLang's flag): this process's spans
/// go to an OpenTelemetry collector over OTLP/HTTP with protobuf bodies,
/// through swift-otel. The
/// W3C `traceparent` of incoming requests is continued, and passed on by
/// the router to both halves of a PD request.
public enum OTLPTraceExport {
    public struct InvalidEndpoint: Error, CustomStringConvertible {
        public let description: String
    }

    /// The URL spans are posted to: an endpoint without a path gets OTLP's `/v1/traces`.
    public static func tracesURL(_ endpoint: String) throws -> String {
        guard let url = URLComponents(string: endpoint), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host?.isEmpty == false else {
            throw InvalidEndpoint(description: "--otlp-traces-endpoint must be an http:// or https:// URL (OTLP/HTTP, e.g. http://127.0.0.1:4318), got '\(endpoint)'")
        }
        return url.path.isEmpty || url.path == "/" ? endpoint.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/v1/traces" : endpoint
    }

    /// The OTLP protocols an operator may ask for (the variables swift-otel
    /// reads) that cannot work: gRPC is not built in, and swift-otel 1.6
    /// writes OTLP/JSON ids in base64 where the spec (and the OpenTelemetry
    /// Collector) wants hex, so its spans would be refused or mis-joined.
    static func checkProtocol(_ environment: [String: String]) throws {
        for key in ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"] {
            guard let value = environment[key], !value.isEmpty else { continue }
            switch value {
            case "http/protobuf": return
            case "http/json":
                throw InvalidEndpoint(description: "\(key)=http/json is not supported: swift-otel encodes trace and span ids in base64 in OTLP/JSON, which the OpenTelemetry Collector rejects; use http/protobuf (the default)")
            default:
                throw InvalidEndpoint(description: "\(key)=\(value) is not supported: PDServe exports OTLP/HTTP with protobuf bodies (http/protobuf)")
            }
        }
    }

    /// Installs the process's tracer (swift-distributed-tracing's
    /// `InstrumentationSystem`, which Hummingbird's `TracingMiddleware` and
    /// PDServe's spans use) and returns the exporter's service, to run in
    /// the process's service group before the HTTP server (so it stops
    /// last and flushes what the server's last requests recorded).
    public static func bootstrap(endpoint: String, serviceName: String, logger: Logger,
                                 environment: [String: String] = ProcessInfo.processInfo.environment) throws -> any Service {
        try checkProtocol(environment)
        var configuration = OTel.Configuration.default
        configuration.serviceName = serviceName
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        configuration.traces.enabled = true
        configuration.traces.otlpExporter.endpoint = try tracesURL(endpoint)
        configuration.traces.otlpExporter.protocol = .httpProtobuf
        configuration.propagators = [.traceContext]
        configuration.diagnosticLogger = .custom(logger)
        let (tracer, service) = try OTel.makeTracingBackend(configuration: configuration)
        InstrumentationSystem.bootstrap(tracer)
        return service
    }
}
