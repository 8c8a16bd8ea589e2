import ArgumentParser
import ServiceLifecycle
import Foundation
import Logging
import Router
import Server

/// `pdserve router`: sglang-router's `launch_router`, with its flag names.
struct RouterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "router",
        abstract: "Route requests to PDServe (or SGLang) instances: prefill/decode pairs, or plain load balancing.",
        discussion: """
        Flags follow python -m sglang_router.launch_router. Examples:

        pdserve router --worker-urls http://127.0.0.1:30001 http://127.0.0.1:30002

        pdserve router --pd-disaggregation --prefill http://127.0.0.1:30001 8998 --decode http://127.0.0.1:30002

        Besides /generate, /v1/completions and /v1/chat/completions it serves /health, /health_generate, /v1/models, \
        /get_model_info, /get_server_info, /get_load, /flush_cache, /abort_request, /metrics, and /workers: \
        GET lists the workers, POST {"url", "mode": "prefill|decode|regular", "bootstrap_port"} adds one, \
        DELETE {"url"} (or ?url=) removes one.
        """
    )

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"
    @Option(help: "Port to listen on (0 picks a free one; the URL is printed when ready).")
    var port = 30000

    @Option(name: .customLong("worker-urls"), parsing: .upToNextOption, help: "Unified workers to balance over (plain mode), e.g. --worker-urls http://127.0.0.1:30001 http://127.0.0.1:30002.")
    var workerURLs: [String] = []
    @Option(name: .customLong("otlp-traces-endpoint"),
            help: "Send OpenTelemetry traces (a span per request and one per worker call, the W3C traceparent passed to the workers) to this OTLP/HTTP collector URL, e.g. http://127.0.0.1:4318.")
    var otlpTracesEndpoint: String?
    @Flag(name: .customLong("pd-disaggregation"), help: "Prefill/decode mode: every request goes to one --prefill and one --decode worker in parallel.")
    var pdDisaggregation = false
    @Option(name: .customLong("prefill"), parsing: .upToNextOption,
            help: ArgumentHelp("A prefill worker and, optionally, its bootstrap server's port (a number, or 'none' for the prefill's default, 8998). Repeatable.",
                               valueName: "URL [BOOTSTRAP_PORT]"))
    var prefill: [String] = []
    @Option(name: .customLong("decode"), help: ArgumentHelp("A decode worker. Repeatable.", valueName: "URL"))
    var decode: [String] = []

    @Option(help: "random, round_robin, power_of_two or cache_aware; in PD mode for both halves unless overridden.")
    var policy = "cache_aware"
    @Option(name: .customLong("prefill-policy"), help: "Policy for choosing the prefill (PD mode).")
    var prefillPolicy: String?
    @Option(name: .customLong("decode-policy"), help: "Policy for choosing the decode (PD mode).")
    var decodePolicy: String?
    @Option(name: .customLong("cache-threshold"), help: "cache_aware: share of a prompt a worker must already hold for the prompt to follow it (0...1).")
    var cacheThreshold = 0.3
    @Option(name: .customLong("balance-abs-threshold"), help: "cache_aware: balance by load when max - min load exceeds this …")
    var balanceAbsThreshold = 64.0
    @Option(name: .customLong("balance-rel-threshold"), help: "… and max load exceeds min load times this.")
    var balanceRelThreshold = 1.5
    @Option(name: .customLong("max-tree-size"), help: "cache_aware: prompt bytes remembered per worker (least recently used forgotten first).")
    var maxTreeSize = 64 << 20

    @Option(name: .customLong("api-key"), help: "Require 'Authorization: Bearer KEY' on every endpoint except /health. Clients' Authorization headers are forwarded to workers; the router's own calls to workers send this key.")
    var apiKey: String?
    @Option(name: .customLong("log-level"), help: "debug, info, warn or error (also trace, warning, critical).")
    var logLevel = "info"
    @Option(name: .customLong("request-timeout-secs"), help: "Seconds a request may take end to end before the router gives up (504).")
    var requestTimeoutSecs = 1800.0
    @Option(name: .customLong("max-payload-size"), help: "Largest request body in bytes (413 above).")
    var maxPayloadSize = 512 << 20
    @OptionGroup var httpLimits: HTTPLimitFlags

    @Option(name: [.customLong("retry-max-retries"), .customLong("max-retries")],
            help: "Attempts per request in all, the first included (sglang-router's meaning: 1 = no retry). A retry goes to other workers (a new pair in PD mode).")
    var retryMaxRetries = 5
    @Option(name: .customLong("retry-initial-backoff-ms"), help: "Pause before the first retry.")
    var retryInitialBackoffMs = 50.0
    @Option(name: .customLong("retry-max-backoff-ms"), help: "Longest pause between retries.")
    var retryMaxBackoffMs = 30_000.0
    @Option(name: .customLong("retry-backoff-multiplier"), help: "Each pause is this many times the previous one.")
    var retryBackoffMultiplier = 1.5
    @Option(name: .customLong("retry-jitter-factor"), help: "Random share (0...1) added to or taken from each pause.")
    var retryJitterFactor = 0.2
    @Flag(name: .customLong("disable-retries"), help: "Never retry (same as --retry-max-retries 1).")
    var disableRetries = false

    @Option(name: .customLong("cb-failure-threshold"), help: "Consecutive failures (5xx or no connection; a 4xx never counts) that open a worker's circuit.")
    var cbFailureThreshold = 10
    @Option(name: .customLong("cb-success-threshold"), help: "Successful trial requests that close a half-open circuit.")
    var cbSuccessThreshold = 1
    @Option(name: .customLong("cb-timeout-duration-secs"), help: "Seconds an open circuit waits before trial requests (half-open).")
    var cbTimeoutDurationSecs = 30.0
    @Flag(name: .customLong("disable-circuit-breaker"), help: "Never open a circuit.")
    var disableCircuitBreaker = false

    @Option(name: .customLong("health-check-interval-secs"), help: "Seconds between health checks of a ready worker.")
    var healthCheckIntervalSecs = 10.0
    @Option(name: .customLong("worker-startup-check-interval"), help: "Seconds between health checks of a worker that is not ready (starting or failed).")
    var workerStartupCheckInterval = 1.0
    @Option(name: .customLong("health-check-timeout-secs"), help: "Seconds one health check may take.")
    var healthCheckTimeoutSecs = 5.0
    @Option(name: .customLong("health-failure-threshold"), help: "Consecutive failed checks that take a ready worker out of rotation. (A request that cannot connect takes it out at once.)")
    var healthFailureThreshold = 3
    @Option(name: .customLong("health-success-threshold"), help: "Consecutive good checks that put a worker (back) in rotation.")
    var healthSuccessThreshold = 1
    @Option(name: .customLong("health-check-endpoint"), help: "Path polled on each worker. A prefill is ready only when its bootstrap server's /health answers too.")
    var healthCheckEndpoint = "/health"
    @Flag(name: .customLong("disable-health-check"), help: "Check nothing: every worker counts as ready.")
    var disableHealthCheck = false
    @Option(name: .customLong("worker-startup-timeout-secs"), help: "Seconds start-up waits for all workers to be ready before reporting ready anyway.")
    var workerStartupTimeoutSecs = 1800.0

    static let levels: [String: Logger.Level] = [
        "trace": .trace, "debug": .debug, "info": .info, "warn": .warning, "warning": .warning, "error": .error, "critical": .critical,
    ]

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535") }
        guard Self.levels[logLevel.lowercased()] != nil else { throw ValidationError("--log-level must be one of debug, info, warn, error") }
        for (flag, value) in [("--policy", policy), ("--prefill-policy", prefillPolicy ?? policy), ("--decode-policy", decodePolicy ?? policy)]
        where PolicyKind(rawValue: value) == nil {
            throw ValidationError("\(flag) must be one of \(PolicyKind.allCases.map(\.rawValue).joined(separator: ", ")) (got '\(value)')")
        }
        guard (0...1).contains(cacheThreshold) else { throw ValidationError("--cache-threshold must be in 0...1") }
        guard retryMaxRetries >= 1 else { throw ValidationError("--retry-max-retries counts attempts and must be >= 1") }
        guard (0...1).contains(retryJitterFactor) else { throw ValidationError("--retry-jitter-factor must be in 0...1") }
        guard cbFailureThreshold >= 1, cbSuccessThreshold >= 1 else { throw ValidationError("--cb-failure-threshold and --cb-success-threshold must be >= 1") }
        guard healthFailureThreshold >= 1, healthSuccessThreshold >= 1 else { throw ValidationError("--health-*-threshold must be >= 1") }
        guard healthCheckIntervalSecs > 0, workerStartupCheckInterval > 0, healthCheckTimeoutSecs > 0, requestTimeoutSecs > 0 else {
            throw ValidationError("intervals and timeouts must be > 0")
        }
        guard healthCheckEndpoint.hasPrefix("/") else { throw ValidationError("--health-check-endpoint must start with /") }
        if pdDisaggregation {
            guard workerURLs.isEmpty else { throw ValidationError("--worker-urls is for plain mode; with --pd-disaggregation use --prefill and --decode") }
        } else {
            guard prefill.isEmpty && decode.isEmpty else { throw ValidationError("--prefill and --decode need --pd-disaggregation") }
        }
    }

    func makeConfiguration() throws -> RouterConfiguration {
        var c = RouterConfiguration()
        c.host = host
        c.port = port
        c.pdDisaggregation = pdDisaggregation
        c.tracing = otlpTracesEndpoint != nil
        if pdDisaggregation {
            c.workers = try PrefillArguments.parse(prefill) + decode.map { try WorkerSpec(url: $0, role: .decode) }
        } else {
            c.workers = try workerURLs.map { try WorkerSpec(url: $0, role: .regular) }
        }
        c.policy = PolicyKind(rawValue: policy)!
        c.prefillPolicy = prefillPolicy.flatMap(PolicyKind.init(rawValue:))
        c.decodePolicy = decodePolicy.flatMap(PolicyKind.init(rawValue:))
        c.cacheAware.cacheThreshold = cacheThreshold
        c.cacheAware.balanceAbsThreshold = balanceAbsThreshold
        c.cacheAware.balanceRelThreshold = balanceRelThreshold
        c.cacheAware.maxTreeSize = maxTreeSize
        c.apiKey = apiKey
        c.requestTimeoutSeconds = requestTimeoutSecs
        c.maxPayloadBytes = maxPayloadSize
        c.httpLimits = httpLimits.limits
        c.retry.maxAttempts = disableRetries ? 1 : retryMaxRetries
        c.retry.initialBackoffMilliseconds = retryInitialBackoffMs
        c.retry.maxBackoffMilliseconds = retryMaxBackoffMs
        c.retry.backoffMultiplier = retryBackoffMultiplier
        c.retry.jitterFactor = retryJitterFactor
        c.circuitBreaker.failureThreshold = cbFailureThreshold
        c.circuitBreaker.successThreshold = cbSuccessThreshold
        c.circuitBreaker.cooldownSeconds = cbTimeoutDurationSecs
        c.circuitBreaker.enabled = !disableCircuitBreaker
        c.health.intervalSeconds = healthCheckIntervalSecs
        c.health.notReadyIntervalSeconds = workerStartupCheckInterval
        c.health.timeoutSeconds = healthCheckTimeoutSecs
        c.health.failureThreshold = healthFailureThreshold
        c.health.successThreshold = healthSuccessThreshold
        c.health.endpoint = healthCheckEndpoint
        c.health.disabled = disableHealthCheck
        c.health.startupTimeoutSeconds = workerStartupTimeoutSecs
        return c
    }

    func run() async throws {
        LoggingSetup.bootstrap(level: (Self.levels[logLevel.lowercased()] ?? .info).rawValue)
        let logger = Logger(label: "pdserve.router")
        let configuration: RouterConfiguration
        do {
            configuration = try makeConfiguration()
        } catch let error as RouterSetupError {
            throw Self.fail(error)
        }
        let mode = pdDisaggregation
            ? "PD mode, \(configuration.workers.filter { $0.role == .prefill }.count) prefill + \(configuration.workers.filter { $0.role == .decode }.count) decode"
            : "plain mode, \(configuration.workers.count) worker(s)"
        let host = configuration.host
        do {
            var services: [any Service] = []
            if let otlpTracesEndpoint {
                do {
                    services.append(try OTLPTraceExport.bootstrap(endpoint: otlpTracesEndpoint, serviceName: "pdserve-router", logger: logger))
                } catch {
                    throw Self.fail(RouterSetupError("\(error)"))
                }
            }
            try await RouterServer(configuration: configuration, logger: logger).run(extraServices: services) { port in
                logger.info("router (\(mode)) ready on http://\(host):\(port)")
            }
        } catch let error as RouterSetupError {
            throw Self.fail(error)
        }
        logger.info("stopped")
    }

    /// A configuration the router cannot run with: the message on stderr and a
    /// failing exit status (CleanExit would exit 0, hiding the failure from scripts).
    static func fail(_ error: RouterSetupError) -> ExitCode {
        FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
        return .failure
    }
}
