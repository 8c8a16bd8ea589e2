import ArgumentParser
import Disaggregation
import Engine
import Foundation
import Kernels
#if canImport(Glibc)
import Glibc
#endif

/// `pdserve up`: a whole local PD cluster — router, prefill and decode
/// instances on free ports — in one command, stopped together on Ctrl-C.
struct UpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Start a local PD cluster: router + prefill + decode instances (the built-in demo model by default).",
        discussion: "Prints the router URL and a curl line when ready. Ctrl-C (or SIGTERM) stops every process."
    )

    @Option(name: .customLong("prefill"), help: "Prefill instances.")
    var prefill = 1
    @Option(name: .customLong("decode"), help: "Decode instances.")
    var decode = 1
    @Option(name: .customLong("transfer-backend"), help: "KV transfer backend between them: tcp, shm, fake, nixl or mooncake.")
    var transferBackend = "tcp"
    @Option(name: .customLong("model-path"), help: "Checkpoint folder, or 'demo' for the built-in random-weight demo model.")
    var modelPath = "demo"
    @Option(help: "Address every process listens on.")
    var host = "127.0.0.1"
    @Option(help: "The router's port (0 picks a free one).")
    var port = 30000
    @Option(name: .customLong("threads-per-instance"), help: "Compute threads per instance (default: the cores divided among the instances).")
    var threadsPerInstance: Int?
    @Option(name: .customLong("matmul-precision"), help: "Precision of large linear layers in every instance: fp32 or bf16 (see serve --help).")
    var matmulPrecision = "fp32"
    @Option(name: .customLong("policy"), help: "Router policy: random, round_robin, power_of_two or cache_aware.")
    var policy = "round_robin"
    @Option(name: .customLong("schedule-policy"), help: ArgumentHelp("Waiting-queue order of the prefill instances.", discussion: SchedulePolicy.help))
    var schedulePolicy: String?
    @Option(name: .customLong("chunked-prefill-size"), help: "Most prompt tokens a prefill instance runs in one step (see serve --help).")
    var chunkedPrefillSize: Int?
    @Option(name: .customLong("max-running-requests"), help: "Most requests decoding at once on each decode instance.")
    var maxRunningRequests: Int?
    @Option(name: .customLong("num-reserved-decode-tokens"), help: "Output tokens a decode instance keeps room for per request before admitting another (see serve --help).")
    var numReservedDecodeTokens: Int?
    @Option(name: .customLong("log-level"), help: "Log level of every process.")
    var logLevel = "warning"
    @Option(name: .customLong("ready-timeout"), help: "Seconds to wait for the cluster to become ready.")
    var readyTimeout: Double = 300

    func validate() throws {
        guard prefill >= 1, decode >= 1 else { throw ValidationError("--prefill and --decode need at least 1 instance each") }
        try TransferBackends.check(transferBackend)
        guard MatmulPrecision(rawValue: matmulPrecision) != nil else { throw ValidationError(MatmulPrecisionHelp.invalid(matmulPrecision)) }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535") }
        if let schedulePolicy { try EngineFlags.checkSchedulePolicy(schedulePolicy) }
        if let chunkedPrefillSize, chunkedPrefillSize < 1 { throw ValidationError("--chunked-prefill-size must be at least 1") }
        if let maxRunningRequests, maxRunningRequests < 1 { throw ValidationError("--max-running-requests must be at least 1") }
        if let numReservedDecodeTokens, numReservedDecodeTokens < 0 { throw ValidationError("--num-reserved-decode-tokens must be >= 0") }
    }

    /// `serve` flags given only where they were set: prefill-side, then decode-side.
    private var prefillFlags: [String] {
        (schedulePolicy.map { ["--schedule-policy", $0] } ?? []) + (chunkedPrefillSize.map { ["--chunked-prefill-size", String($0)] } ?? [])
    }

    private var decodeFlags: [String] {
        (maxRunningRequests.map { ["--max-running-requests", String($0)] } ?? [])
            + (numReservedDecodeTokens.map { ["--num-reserved-decode-tokens", String($0)] } ?? [])
    }

    func run() throws {
        let say = { (line: String) in FileHandle.standardError.write(Data((line + "\n").utf8)) }
        // Generate the demo model once, before several processes race to.
        let modelFolder = try ModelLoader.resolve(modelPath).path
        let servedName = modelPath == "demo" ? ["--served-model-name", "demo"] : []
        let binary = Self.executablePath()
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let threads = threadsPerInstance ?? max(1, cores / (prefill + decode))
        // The instances authenticate each other with a key of their own (one the caller exported is kept).
        var environment = ProcessInfo.processInfo.environment
        if (environment[ChannelKey.environmentName] ?? "").isEmpty { environment[ChannelKey.environmentName] = ChannelKey.randomSecret() }
        let cluster = Cluster(log: say, environment: environment)
        defer { cluster.stopAll() }
        Cluster.installSignalHandlers(cluster)

        var prefillArgs: [String] = []
        for i in 0..<prefill {
            let httpPort = try Self.freePort(host), bootstrapPort = try Self.freePort(host)
            try cluster.start(name: "prefill-\(i)", binary: binary, arguments: [
                "serve", "--model-path", modelFolder, "--host", host, "--port", String(httpPort), "--threads", String(threads),
                "--matmul-precision", matmulPrecision, "--disaggregation-mode", "prefill", "--disaggregation-bootstrap-port", String(bootstrapPort),
                "--disaggregation-transfer-backend", transferBackend, "--log-level", logLevel,
            ] + prefillFlags + servedName, healthURL: (host, httpPort))
            prefillArgs += ["--prefill", "http://\(host):\(httpPort)", String(bootstrapPort)]
        }
        var decodeArgs: [String] = []
        for i in 0..<decode {
            let httpPort = try Self.freePort(host)
            try cluster.start(name: "decode-\(i)", binary: binary, arguments: [
                "serve", "--model-path", modelFolder, "--host", host, "--port", String(httpPort), "--threads", String(threads),
                "--matmul-precision", matmulPrecision, "--disaggregation-mode", "decode", "--disaggregation-transfer-backend", transferBackend, "--log-level", logLevel,
            ] + decodeFlags + servedName, healthURL: (host, httpPort))
            decodeArgs += ["--decode", "http://\(host):\(httpPort)"]
        }
        let routerPort = port == 0 ? try Self.freePort(host) : port
        try cluster.start(name: "router", binary: binary, arguments: [
            "router", "--pd-disaggregation", "--host", host, "--port", String(routerPort), "--policy", policy, "--log-level", logLevel,
        ] + prefillArgs + decodeArgs, healthURL: (host, routerPort))

        say("waiting for \(prefill) prefill + \(decode) decode instance(s) and the router (model: \(modelFolder))...")
        try cluster.waitUntilReady(timeout: readyTimeout)
        // The router is ready when a request makes it through both halves.
        try cluster.waitForFirstRequest(host: host, port: routerPort, timeout: readyTimeout)
        let url = "http://\(host):\(routerPort)"
        let banner = """
        PDServe is up: \(url)  (router → \(prefill) prefill + \(decode) decode, transfer backend \(transferBackend))
        try: curl \(url)/v1/completions -H 'Content-Type: application/json' -d '{"prompt": "Hello", "max_tokens": 16}'
        Ctrl-C stops everything.

        """
        FileHandle.standardOutput.write(Data(banner.utf8))
        let code = cluster.waitForExit()
        if code != 0 { throw ExitCode(code) }
    }

    /// The running binary, so children are the same build.
    static func executablePath() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        return n > 0 ? String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
    }

    /// A port nothing listens on right now.
    static func freePort(_ host: String) throws -> Int {
        let listener = try FrameListener(host: host, port: 0)
        defer { listener.close() }
        return listener.port
    }
}

/// The child processes of `pdserve up`: started with their output prefixed
/// by name, watched, and stopped together.
final class Cluster: @unchecked Sendable {
    struct Member {
        let name: String
        let process: Process
        let health: (host: String, port: Int)
    }

    private let lock = NSLock()
    private var members: [Member] = []
    private var stopping = false
    private let exited = DispatchSemaphore(value: 0)
    private var exitCode: Int32 = 0
    let log: (String) -> Void
    /// Every member's environment (it carries the PD auth key, which ps would show on a command line).
    let environment: [String: String]

    init(log: @escaping (String) -> Void, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.log = log
        self.environment = environment
    }

    func start(name: String, binary: String, arguments: [String], healthURL: (String, Int)) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        pipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            guard !data.isEmpty, let text = String(data: data, encoding: .utf8) else { return }
            for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
                FileHandle.standardError.write(Data("[\(name)] \(line)\n".utf8))
            }
        }
        process.terminationHandler = { [weak self] process in
            guard let self else { return }
            let unexpected = lock.withLock { !stopping }
            if unexpected {
                log("\(name) exited with status \(process.terminationStatus); stopping the cluster")
                lock.withLock { exitCode = 1 }
                exited.signal()
            }
        }
        try process.run()
        lock.withLock { members.append(Member(name: name, process: process, health: healthURL)) }
    }

    func waitUntilReady(timeout: Double) throws {
        let deadline = Date(timeIntervalSinceNow: timeout)
        for member in lock.withLock({ members }) {
            while (try? SimpleHTTP.get(host: member.health.host, port: member.health.port, path: "/health", timeout: 2))?.status != 200 {
                guard member.process.isRunning else { throw StartupError("\(member.name) failed to start") }
                guard Date() < deadline else { throw StartupError("\(member.name) was not ready within \(Int(timeout))s") }
                Thread.sleep(forTimeInterval: 0.1)
            }
        }
    }

    func waitForFirstRequest(host: String, port: Int, timeout: Double) throws {
        let deadline = Date(timeIntervalSinceNow: timeout)
        let probe = Data(#"{"text": "ping", "sampling_params": {"max_new_tokens": 1}}"#.utf8)
        while Date() < deadline {
            if (try? SimpleHTTP.post(host: host, port: port, path: "/generate", json: probe, timeout: 30))?.status == 200 { return }
            Thread.sleep(forTimeInterval: 0.2)
        }
        throw StartupError("the router did not serve a request within \(Int(timeout))s")
    }

    /// Blocks until a signal asks to stop (0) or a member dies (1).
    func waitForExit() -> Int32 {
        exited.wait()
        return lock.withLock { exitCode }
    }

    func requestStop() { exited.signal() }

    /// SIGTERM to every member, then SIGKILL to any still running after 10 s.
    func stopAll() {
        let all = lock.withLock { () -> [Member] in
            stopping = true
            return members
        }
        for member in all.reversed() where member.process.isRunning { member.process.terminate() }
        let deadline = Date(timeIntervalSinceNow: 10)
        for member in all {
            while member.process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
            if member.process.isRunning { kill(member.process.processIdentifier, SIGKILL) }
        }
    }

    private nonisolated(unsafe) static var sources: [DispatchSourceSignal] = []

    static func installSignalHandlers(_ cluster: Cluster) {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { cluster.log("stopping..."); cluster.requestStop() }
            source.resume()
            sources.append(source)
        }
    }
}
