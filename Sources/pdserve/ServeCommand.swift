import ArgumentParser
import Disaggregation
import Engine
import Foundation
import Logging
import Server

/// `pdserve serve`: one serving instance (SGLang's `launch_server`).
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a model over HTTP: OpenAI-compatible and SGLang-native APIs.",
        discussion: "Flags follow python -m sglang.launch_server. Flags of features this build does not have stop start-up with a message naming them."
    )

    @OptionGroup var engine: EngineFlags
    @OptionGroup var server: ServerFlags
    @OptionGroup var compatibility: CompatibilityFlags
    @OptionGroup var httpLimits: HTTPLimitFlags

    func run() async throws {
        LoggingSetup.bootstrap(level: server.logLevel)
        let logger = Logger(label: "pdserve.serve")
        try compatibility.check(logger: logger)
        let mode = DisaggregationSetup.Mode(rawValue: compatibility.disaggregationMode)
        let backend = compatibility.transferBackend ?? "tcp"
        let settings: DisaggregationEnvironment
        let authKey: ChannelKey?
        do {
            try TransferBackends.check(backend)
            settings = try DisaggregationEnvironment.load()
            authKey = try compatibility.channelKey()
        } catch {
            throw StartupError("\(error)")
        }
        var options = engine.options
        DisaggregationSetup.prepare(&options, mode: mode, backend: backend)
        let core: EngineCore
        do {
            core = try ModelLoader.load(modelPath: engine.modelPath, options: options, progress: { logger.info("\($0)") })
        } catch {
            throw StartupError("\(error)")
        }
        options = core.options
        var attached: DisaggregationSetup.Attached?
        if let mode {
            do {
                attached = try DisaggregationSetup.attach(mode: mode, core: core, backend: backend, settings: settings, host: server.host,
                                                          bootstrapPort: compatibility.bootstrapPort ?? 8998, ibDevice: compatibility.ibDevice,
                                                          authKey: authKey, logger: logger)
            } catch {
                throw StartupError("\(error)")
            }
        }
        let directory = try ModelLoader.resolve(engine.modelPath)
        var configuration = ServerConfiguration(servedModelName: server.servedModelName ?? (engine.modelPath == "demo" ? "demo" : engine.modelPath),
                                                modelPath: directory.path)
        configuration.host = server.host
        configuration.port = server.port
        configuration.apiKey = server.apiKey
        configuration.maxRunningRequests = options.maxRunningRequests
        configuration.maxQueuedRequests = server.maxQueuedRequests
        configuration.shutdownTimeout = server.shutdownTimeout
        configuration.httpLimits = httpLimits.limits
        configuration.toolCallParser = server.toolCallParser.flatMap(ToolCallFormat.init(parserName:))
        var services = attached?.services ?? []
        if let endpoint = server.otlpTracesEndpoint {
            do {
                services.insert(try OTLPTraceExport.bootstrap(endpoint: endpoint, serviceName: "pdserve-\(mode?.rawValue ?? "unified")", logger: logger), at: 0)
            } catch {
                throw StartupError("\(error)")
            }
            configuration.tracing = true
        }
        configuration.disaggregationMode = compatibility.disaggregationMode
        configuration.extraInfo = attached?.info ?? [:]
        if let path = server.chatTemplate {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw StartupError("cannot read --chat-template \(path)") }
            configuration.chatTemplate = text
        }
        let engineHandle = Engine(core: core)
        attached?.connect(engineHandle)
        let instance = InstanceServer(engine: engineHandle, configuration: configuration, logger: logger)
        let (name, host) = (configuration.servedModelName, configuration.host)
        let role = mode?.rawValue ?? "unified", profiler = core.profiler
        try await instance.run(extraServices: services) { port in
            profiler.source = .init(processName: "pdserve \(role) \(host):\(port)", role: role)
            logger.info("serving \(name) on http://\(host):\(port)")
        }
        logger.info("stopped")
    }
}

/// HTTP-side flags of an instance.
struct ServerFlags: ParsableArguments {
    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"
    @Option(help: "Port to listen on (0 picks a free one).")
    var port = 30000
    @Option(name: .customLong("otlp-traces-endpoint"),
            help: "Send OpenTelemetry traces (a span per HTTP request and per engine request, continuing the caller's W3C traceparent) to this OTLP/HTTP collector URL, e.g. http://127.0.0.1:4318 (/v1/traces is added to a URL without a path). OTEL_EXPORTER_OTLP_TRACES_* variables apply.")
    var otlpTracesEndpoint: String?
    @Option(name: .customLong("served-model-name"), help: "Model name clients send in 'model' (default: the model path).")
    var servedModelName: String?
    @Option(name: .customLong("api-key"), help: "Require 'Authorization: Bearer KEY' on every endpoint except /health.")
    var apiKey: String?
    @Option(name: .customLong("max-queued-requests"), help: "Requests allowed to wait beyond the running batch; more get 503 with Retry-After.")
    var maxQueuedRequests = 1024
    @Option(name: .customLong("shutdown-timeout"), help: "Seconds in-flight requests get to finish after SIGTERM before they are aborted.")
    var shutdownTimeout: Double = 30
    @Option(name: .customLong("chat-template"), help: "Jinja chat template file overriding the tokenizer's.")
    var chatTemplate: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, warning, error or critical.")
    var logLevel = "info"
    @Option(name: .customLong("tool-call-parser"), help: "Split chat replies into content and tool_calls as this model family writes calls: \(ToolCallFormat.names) (default: replies stay text).")
    var toolCallParser: String?

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535") }
        guard Logger.Level(rawValue: logLevel.lowercased()) != nil else { throw ValidationError("--log-level must be one of trace, debug, info, warning, error, critical") }
        guard shutdownTimeout >= 0 else { throw ValidationError("--shutdown-timeout must be >= 0") }
        guard maxQueuedRequests >= 0 else { throw ValidationError("--max-queued-requests must be >= 0") }
        if let toolCallParser, ToolCallFormat(parserName: toolCallParser) == nil {
            throw ValidationError("--tool-call-parser \(toolCallParser): this build parses \(ToolCallFormat.names)")
        }
    }
}

/// SGLang flags that appear in its published launch commands. Each one
/// parses; those whose feature this build lacks stop start-up by name.
struct CompatibilityFlags: ParsableArguments {
    @Option(name: .customLong("disaggregation-mode"), help: "null (unified), prefill or decode.")
    var disaggregationMode = "null"
    @Option(name: .customLong("disaggregation-transfer-backend"), help: "KV transfer backend for PD disaggregation: tcp (default), shm, fake, nixl or mooncake (SGLang's ascend and mori are not built).")
    var transferBackend: String?
    @Option(name: .customLong("disaggregation-bootstrap-port"), help: "Prefill instances' bootstrap server port.")
    var bootstrapPort: Int?
    @Option(name: .customLong("disaggregation-ib-device"), help: "RDMA device(s) for transfer backends that use them.")
    var ibDevice: String?
    @Option(name: .customLong("disaggregation-auth-key"), help: ArgumentHelp(
        "Shared secret (16+ bytes) of one PD deployment: transfer connections, every transfer frame, bootstrap registrations and answers are authenticated with it (HMAC-SHA256).",
        discussion: "PDServe's own flag (SGLang has none). Prefer \(ChannelKey.environmentName), which ps does not show. Default: none; pdserve up makes one."))
    var authKey: String?
    @Option(name: .customLong("disaggregation-decode-tp"), help: "Decode instances' tensor-parallel size (prefill side).")
    var decodeTP: Int?
    @Option(name: .customLong("disaggregation-decode-dp"), help: "Decode instances' data-parallel size (prefill side).")
    var decodeDP: Int?
    @Option(name: [.customLong("tp-size"), .customLong("tp")], help: "Tensor-parallel size (only 1 is supported).")
    var tpSize = 1
    @Option(name: [.customLong("dp-size"), .customLong("dp")], help: "Data-parallel size (only 1 is supported).")
    var dpSize = 1
    @Option(name: .customLong("mem-fraction-static"), help: "GPU memory fraction in SGLang; has no meaning on this CPU engine (use --max-total-tokens).")
    var memFractionStatic: Double?
    @Option(name: .customLong("base-gpu-id"), help: "First GPU in SGLang; this CPU engine uses no GPU.")
    var baseGPUId: Int?
    @Flag(name: .customLong("enable-dp-attention"), help: "DP attention (not supported).")
    var enableDPAttention = false
    @Option(name: .customLong("moe-a2a-backend"), help: "MoE all-to-all backend (not supported: no MoE models).")
    var moeA2ABackend: String?
    @Option(name: .customLong("dist-init-addr"), help: "Multi-node rendezvous address (multi-node is not supported).")
    var distInitAddr: String?
    @Option(help: "Number of nodes (only 1 is supported).")
    var nnodes = 1
    @Option(name: .customLong("node-rank"), help: "This node's rank (only 0).")
    var nodeRank = 0
    @Flag(name: .customLong("trust-remote-code"), help: "Accepted for compatibility: PDServe never runs code from a checkpoint.")
    var trustRemoteCode = false

    /// The flag, else the environment variable; nil when neither is set.
    func channelKey(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ChannelKey? {
        guard let secret = authKey ?? environment[ChannelKey.environmentName], !secret.isEmpty else { return nil }
        return try ChannelKey(secret: secret)
    }

    func check(logger: Logger) throws {
        func refuse(_ flag: String, _ why: String) -> StartupError { StartupError("\(flag): \(why)") }
        guard ["null", "prefill", "decode"].contains(disaggregationMode) else {
            throw refuse("--disaggregation-mode \(disaggregationMode)", "must be null, prefill or decode")
        }
        if disaggregationMode == "null", transferBackend != nil || decodeTP != nil || decodeDP != nil || bootstrapPort != nil || ibDevice != nil {
            logger.warning("disaggregation flags have no effect with --disaggregation-mode null")
        }
        if let decodeTP, decodeTP != 1 { throw refuse("--disaggregation-decode-tp \(decodeTP)", "decode tensor parallelism is not supported; use 1") }
        if let decodeDP, decodeDP != 1 { throw refuse("--disaggregation-decode-dp \(decodeDP)", "decode data parallelism is not supported; use 1") }
        if let ibDevice, transferBackend?.lowercased() != "nixl" {
            logger.info("--disaggregation-ib-device \(ibDevice): only the nixl backend uses RDMA devices")
        }
        if let bootstrapPort, !(1...65535).contains(bootstrapPort) { throw refuse("--disaggregation-bootstrap-port \(bootstrapPort)", "must be in 1...65535") }
        if tpSize != 1 { throw refuse("--tp-size \(tpSize)", "tensor parallelism is not supported; use 1") }
        if dpSize != 1 { throw refuse("--dp-size \(dpSize)", "data parallelism inside one instance is not supported; run several instances behind the router") }
        if enableDPAttention { throw refuse("--enable-dp-attention", "not supported") }
        if let moeA2ABackend, moeA2ABackend != "none" { throw refuse("--moe-a2a-backend \(moeA2ABackend)", "not supported (no MoE models)") }
        if nnodes != 1 || nodeRank != 0 || distInitAddr != nil { throw refuse("--nnodes/--node-rank/--dist-init-addr", "multi-node serving is not supported") }
        if memFractionStatic != nil { logger.warning("--mem-fraction-static sizes GPU memory in SGLang and has no effect here; size the KV pool with --max-total-tokens") }
        if baseGPUId != nil { logger.warning("--base-gpu-id has no effect: this engine runs on the CPU") }
    }
}

/// swift-log to stderr at the chosen level; metadata (request ids) is printed with each line.
enum LoggingSetup {
    static func bootstrap(level: String) {
        let parsed = Logger.Level(rawValue: level.lowercased()) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = parsed
            return handler
        }
    }
}
