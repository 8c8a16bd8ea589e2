@testable import Server
import Testing

/// `--otlp-traces-endpoint` URLs and the OTLP protocols an operator may ask for.
struct OTLPTraceExportTests {
    @Test func aURLWithoutAPathGetsTheTracesPath() throws {
        #expect(try OTLPTraceExport.tracesURL("http://127.0.0.1:4318") == "http://127.0.0.1:4318/v1/traces")
        #expect(try OTLPTraceExport.tracesURL("http://collector:4318/") == "http://collector:4318/v1/traces")
        #expect(try OTLPTraceExport.tracesURL("https://collector/custom/path") == "https://collector/custom/path")
    }

    @Test(arguments: ["localhost:4317", "grpc://collector:4317", "http://", "collector"])
    func anythingButAnHTTPURLIsRefused(endpoint: String) {
        #expect(throws: OTLPTraceExport.InvalidEndpoint.self) { try OTLPTraceExport.tracesURL(endpoint) }
    }

    @Test func onlyProtobufOverHTTPIsAccepted() throws {
        try OTLPTraceExport.checkProtocol([:])
        try OTLPTraceExport.checkProtocol(["OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"])
        // The traces-specific variable wins over the general one.
        try OTLPTraceExport.checkProtocol(["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"])
        for bad in ["http/json", "grpc", "thrift"] {
            #expect(throws: OTLPTraceExport.InvalidEndpoint.self) { try OTLPTraceExport.checkProtocol(["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": bad]) }
        }
    }
}
