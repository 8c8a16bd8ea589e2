import ArgumentParser
import Bench
import Foundation
import Tokenization

/// `pdserve bench serving`: an online serving benchmark client that speaks
/// the flags of `python -m sglang.bench_serving` and `vllm bench serve`.
struct BenchServingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serving",
        abstract: "Measure a running server (or router): TTFT, ITL, TPOT, E2E latency, throughput and goodput.",
        discussion: """
        Flags follow python -m sglang.bench_serving. Requests stream with ignore_eos, so every request generates \
        exactly its output length. Random prompts are token ids drawn from the served model's tokenizer (found \
        through --tokenizer, a local --model folder, or the model_path the server reports).

        Mixed workload (--workload mixed): two classes of random requests, each arriving as its own Poisson \
        process for --duration seconds — chat (--chat-rate/--chat-input-len/--chat-output-len) and documents \
        (--doc-rate/--doc-input-len/--doc-output-len) — with metrics reported per class. Goodput objectives \
        may be given per class: --goodput ttft:1000 tpot:100 doc.ttft:5000.

        Example: pdserve bench serving --backend sglang --port 30000 --dataset-name random --random-input-len 256 \
        --random-output-len 64 --random-range-ratio 1 --num-prompts 100 --request-rate 4 --goodput ttft:500 tpot:50
        """
    )

    @Option(help: "API to call: sglang (/generate), sglang-oai, vllm, openai (/v1/completions), sglang-oai-chat, openai-chat (/v1/chat/completions).")
    var backend = "sglang"
    @Option(name: .customLong("base-url"), help: "Server or router URL, e.g. http://127.0.0.1:30000 (default: http://HOST:PORT).")
    var baseURL: String?
    @Option(help: "Server host, when --base-url is not given.")
    var host = "127.0.0.1"
    @Option(help: "Server port, when --base-url is not given.")
    var port = 30000
    @Option(help: "Model name sent to OpenAI endpoints (default: the server's first /v1/models entry); a local folder also serves as --tokenizer.")
    var model: String?
    @Option(help: "Local folder with tokenizer.json (default: --model if it is a folder, else the model_path the server reports).")
    var tokenizer: String?

    @Option(name: .customLong("dataset-name"), help: "random (token-id prompts of --random-* lengths) or sharegpt (a local JSON file, see --dataset-path).")
    var datasetName = "random"
    @Option(name: .customLong("dataset-path"), help: "ShareGPT JSON file (ShareGPT_V3_unfiltered_cleaned_split.json). Never downloaded.")
    var datasetPath: String?
    @Option(name: .customLong("num-prompts"), help: "Requests to send (single workload).")
    var numPrompts = 1000
    @Option(name: .customLong("sharegpt-output-len"), help: "Output length for every ShareGPT request (default: the dataset's reply length).")
    var sharegptOutputLen: Int?
    @Option(name: .customLong("random-input-len"), help: "Prompt tokens per random request.")
    var randomInputLen = 1024
    @Option(name: .customLong("random-output-len"), help: "Output tokens per random request.")
    var randomOutputLen = 1024
    @Option(name: .customLong("random-range-ratio"), help: "Random lengths are drawn from [ratio·len, len]; 1 makes them exact.")
    var randomRangeRatio = 0.0

    @Option(name: .customLong("request-rate"), help: "Poisson arrival rate in requests/s; inf sends all at once.")
    var requestRate = "inf"
    @Option(name: .customLong("max-concurrency"), help: "Most requests in flight; later arrivals wait for a slot.")
    var maxConcurrency: Int?
    @Option(parsing: .upToNextOption, help: "Goodput objectives KEY:MS (ttft, tpot, e2e); CLASS.KEY:MS for one workload class.")
    var goodput: [String] = []
    @Option(name: .customLong("warmup-requests"), help: "Requests sent before measuring (not counted).")
    var warmupRequests = 1
    @Option(help: "Seed for prompts, lengths and arrival times.")
    var seed: UInt64 = 1
    @Flag(name: .customLong("disable-stream"), help: "Non-streamed requests (TTFT then equals E2E latency; no ITL).")
    var disableStream = false
    @Flag(name: .customLong("pd-separated"), help: "The target is a prefill/decode router (reported with the results).")
    var pdSeparated = false
    @Flag(help: "Profile the server during the measured run: POST /start_profile before it and /stop_profile after (the base URL, or with --pd-separated the workers named below).")
    var profile = false
    @Option(name: .customLong("profile-prefill-url"), parsing: .upToNextOption,
            help: "With --profile --pd-separated: prefill worker URL(s) to profile (not with --profile-decode-url).")
    var profilePrefillURL: [String] = []
    @Option(name: .customLong("profile-decode-url"), parsing: .upToNextOption,
            help: "With --profile --pd-separated: decode worker URL(s) to profile (not with --profile-prefill-url).")
    var profileDecodeURL: [String] = []
    @Option(name: .customLong("profile-activities"), parsing: .upToNextOption, help: "Activities to record (CPU, GPU).")
    var profileActivities: [String] = ["CPU", "GPU"]
    @Option(name: .customLong("profile-num-steps"), help: "Engine steps to record; the profile then ends by itself.")
    var profileNumSteps: Int?
    @Option(name: .customLong("profile-output-dir"), help: "Directory the instances write their traces to (their default: PDSERVE_PROFILER_DIR or /tmp).")
    var profileOutputDir: String?
    @Option(name: .customLong("request-timeout"), help: "Seconds one request may take.")
    var requestTimeout = 600.0

    @Option(name: .customLong("extra-request-body"),
            help: "A JSON object merged into every request body's top level, e.g. '{\"temperature\": 0.8, \"top_p\": 0.95}' for sampled OpenAI requests (as sglang.bench_serving; for --backend sglang it replaces top-level fields such as sampling_params).")
    var extraRequestBody: String?
    @Option(name: .customLong("sampling-params"),
            help: "A JSON object of sampling fields every request uses instead of greedy, e.g. '{\"temperature\": 1.0, \"top_p\": 0.9}': merged into sampling_params for --backend sglang (keeping each request's max_new_tokens), into the top level for the OpenAI backends.")
    var samplingParams: String?

    @Option(name: .customLong("output-file"), help: "Append the results as one JSON line (sglang's keys) to this file.")
    var outputFile: String?
    @Flag(name: .customLong("output-details"), help: "Also write per-request lists (ttfts, itls, lengths, classes, errors) to the JSON line.")
    var outputDetails = false
    @Flag(name: .customLong("disable-tqdm"), help: "No progress lines.")
    var disableProgress = false
    @Option(name: .customLong("progress-interval"), help: "Seconds between progress lines.")
    var progressInterval = 5.0

    @Option(help: "single (the dataset flags above) or mixed (chat + document classes, below).")
    var workload = "single"
    @Option(help: "Mixed workload: seconds of arrivals (each class sends about rate × duration requests).")
    var duration = 60.0
    @Option(name: .customLong("chat-rate"), help: "Mixed workload: chat requests per second.")
    var chatRate = 2.0
    @Option(name: .customLong("chat-input-len"), help: "Mixed workload: chat prompt tokens.")
    var chatInputLen = 64
    @Option(name: .customLong("chat-output-len"), help: "Mixed workload: chat output tokens.")
    var chatOutputLen = 128
    @Option(name: .customLong("doc-rate"), help: "Mixed workload: document requests per second.")
    var docRate = 0.6
    @Option(name: .customLong("doc-input-len"), help: "Mixed workload: document prompt tokens.")
    var docInputLen = 1024
    @Option(name: .customLong("doc-output-len"), help: "Mixed workload: document output tokens.")
    var docOutputLen = 4

    func validate() throws {
        guard ServingBackend(rawValue: backend) != nil else {
            throw ValidationError("--backend must be one of \(ServingBackend.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        // In PD, a prefill and a decode are profiled in separate runs (SGLang's rule).
        if !profilePrefillURL.isEmpty && !profileDecodeURL.isEmpty {
            throw ValidationError("--profile-prefill-url and --profile-decode-url cannot be used together: profile the prefill and the decode workers in separate runs")
        }
        if !(profilePrefillURL.isEmpty && profileDecodeURL.isEmpty) && !(profile && pdSeparated) {
            throw ValidationError("--profile-prefill-url and --profile-decode-url need --profile --pd-separated")
        }
        if let profileNumSteps, profileNumSteps < 1 { throw ValidationError("--profile-num-steps must be at least 1") }
        guard ["random", "sharegpt"].contains(datasetName) else { throw ValidationError("--dataset-name must be random or sharegpt") }
        guard ["single", "mixed"].contains(workload) else { throw ValidationError("--workload must be single or mixed") }
        guard parsedRate != nil else { throw ValidationError("--request-rate must be a positive number or inf") }
        guard numPrompts >= 1 else { throw ValidationError("--num-prompts must be at least 1") }
        guard randomInputLen >= 1, randomOutputLen >= 1 else { throw ValidationError("--random-input-len and --random-output-len must be at least 1") }
        guard (0...1).contains(randomRangeRatio) else { throw ValidationError("--random-range-ratio must be in 0...1") }
        if let maxConcurrency, maxConcurrency < 1 { throw ValidationError("--max-concurrency must be at least 1") }
        guard warmupRequests >= 0 else { throw ValidationError("--warmup-requests must be >= 0") }
        guard requestTimeout > 0, progressInterval > 0 else { throw ValidationError("--request-timeout and --progress-interval must be positive") }
        if workload == "mixed" {
            guard duration > 0, chatRate > 0, docRate > 0 else { throw ValidationError("--duration, --chat-rate and --doc-rate must be positive") }
            guard min(chatInputLen, chatOutputLen, docInputLen, docOutputLen) >= 1 else { throw ValidationError("mixed workload lengths must be at least 1") }
        }
        _ = try GoodputObjectives(parsing: goodput)
    }

    /// Whom --profile profiles: the base URL, or with --pd-separated the named workers (none named: a warning, as SGLang).
    private func profilerTargets(baseURL: String, log: (String) -> Void) -> [ServingProfiler.Target]? {
        guard profile else { return nil }
        guard pdSeparated else { return [.init(label: "Server", url: baseURL)] }
        let targets = ServingProfiler.targets(prefill: profilePrefillURL, decode: profileDecodeURL)
        if targets.isEmpty {
            log("Warning: PD separated mode requires --profile-prefill-url or --profile-decode-url; the profiler is not started")
            return nil
        }
        return targets
    }

    private var parsedRate: Double? {
        if requestRate.lowercased() == "inf" { return .infinity }
        guard let value = Double(requestRate), value > 0 else { return nil }
        return value
    }

    /// A flag whose value is a JSON object; empty when the flag is absent.
    private func jsonObjectOption(_ text: String?, flag: String) throws -> [String: Any] {
        guard let text else { return [:] }
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw ValidationError("\(flag) must be a JSON object, got: \(text)")
        }
        return object
    }

    func run() async throws {
        let log: @Sendable (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
        let backend = ServingBackend(rawValue: self.backend)!
        let url = (baseURL ?? "http://\(host):\(port)").trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        let objectives = try GoodputObjectives(parsing: goodput)
        let probe = ServingClient(baseURL: url, backend: backend, model: nil, stream: false, timeoutSeconds: 30)
        let tokenizer: Tokenizer
        var modelName = model
        do {
            tokenizer = try await loadTokenizer(probe, log: log)
            if modelName == nil, backend.api != .generate {
                // OpenAI servers that require a model (vLLM) get the one they serve.
                modelName = ((try? await probe.getJSON("/v1/models"))?["data"] as? [[String: Any]])?.first?["id"] as? String
            }
        } catch {
            await probe.shutdown()
            throw error
        }
        await probe.shutdown()

        var rng = SeededGenerator(seed: seed)
        let dataset = ServingDataset(tokenizer: tokenizer)
        let schedule: ServingSchedule
        var workloads: [WorkloadClass] = []
        let rate: Double
        var settings: [String: Any] = ["seed": seed, "warmup_requests": warmupRequests, "stream": !disableStream, "workload": workload]
        if workload == "mixed" {
            workloads = [
                WorkloadClass(name: "chat", rate: chatRate, inputLength: chatInputLen, outputLength: chatOutputLen),
                WorkloadClass(name: "doc", rate: docRate, inputLength: docInputLen, outputLength: docOutputLen),
            ]
            var parts: [ServingSchedule] = []
            for w in workloads {
                let count = max(1, Int((w.rate * duration).rounded()))
                parts.append(.poisson(try dataset.random(w, count: count, using: &rng), rate: w.rate, using: &rng))
            }
            schedule = .merged(parts)
            rate = chatRate + docRate
            settings["mixed_duration"] = duration
            log("mixed workload: \(workloads.map { "\($0.name) \($0.inputLength) in / \($0.outputLength) out at \($0.rate) req/s" }.joined(separator: " + ")) for \(duration) s: \(schedule.entries.count) requests")
        } else {
            let prompts: [ServingPrompt]
            if datasetName == "sharegpt" {
                guard let datasetPath else {
                    throw ValidationError("--dataset-name sharegpt needs --dataset-path FILE: this tool never downloads ShareGPT (use --dataset-name random without a file)")
                }
                prompts = try dataset.shareGPT(path: datasetPath, count: numPrompts, fixedOutputLength: sharegptOutputLen, using: &rng)
                settings["sharegpt_output_len"] = sharegptOutputLen.map { $0 as Any } ?? NSNull()
            } else {
                let w = WorkloadClass(name: "all", rate: parsedRate!, inputLength: randomInputLen, outputLength: randomOutputLen, rangeRatio: randomRangeRatio)
                prompts = try dataset.random(w, count: numPrompts, using: &rng)
                settings["random_input_len"] = randomInputLen
                settings["random_output_len"] = randomOutputLen
                settings["random_range_ratio"] = randomRangeRatio
            }
            rate = parsedRate!
            schedule = .poisson(prompts, rate: rate, using: &rng)
            log("\(datasetName): \(prompts.count) requests, \(prompts.reduce(0) { $0 + $1.promptLength }) input and \(prompts.reduce(0) { $0 + $1.outputLength }) output tokens")
        }
        // Warm-up prompts are fresh ones, so they leave nothing in the prefix cache that the run would hit.
        let warmupClass = WorkloadClass(name: "warmup", rate: 1, inputLength: min(64, randomInputLen), outputLength: 8)
        let warmups = try dataset.random(warmupClass, count: warmupRequests, using: &rng)

        var options = ServingBenchmarkOptions()
        options.maxConcurrency = maxConcurrency
        options.progressInterval = disableProgress ? .infinity : progressInterval
        options.objectives = objectives
        let extraBody = try jsonObjectOption(extraRequestBody, flag: "--extra-request-body")
        let sampling = try jsonObjectOption(samplingParams, flag: "--sampling-params")
        if extraRequestBody != nil { settings["extra_request_body"] = extraBody }
        if samplingParams != nil { settings["sampling_params"] = sampling }
        let client = ServingClient(baseURL: url, backend: backend, model: modelName, stream: !disableStream, timeoutSeconds: requestTimeout,
                                   extraBody: extraBody, sampling: sampling)
        let result: ServingRunResult
        do {
            let bench = ServingBenchmark(client: client, options: options)
            try await bench.warmUp(warmups, log: log)
            let profiler = profilerTargets(baseURL: url, log: log).map {
                ServingProfiler(targets: $0, activities: profileActivities, numSteps: profileNumSteps, outputDirectory: profileOutputDir)
            }
            await profiler?.start(log: log)
            log("benchmarking \(url)\(backend.path) (\(backend.rawValue)\(pdSeparated ? ", PD router" : ""))...")
            let quiet: @Sendable (String) -> Void = { _ in }
            result = await bench.run(schedule, log: disableProgress ? quiet : log)
            await profiler?.stop(log: log)
        } catch {
            await client.shutdown()
            throw error
        }
        await client.shutdown()

        let report = ServingReport(backend: backend.rawValue, datasetName: workload == "mixed" ? "mixed" : datasetName, requestRate: rate,
                                   maxConcurrency: maxConcurrency, pdSeparated: pdSeparated, objectives: objectives,
                                   workloads: workloads, settings: settings, result: result)
        print(report.text())
        if let outputFile {
            let line = try report.jsonLine(details: outputDetails) + "\n"
            if let handle = FileHandle(forWritingAtPath: outputFile) {
                handle.seekToEndOfFile()
                handle.write(Data(line.utf8))
                handle.closeFile()
            } else {
                try Data(line.utf8).write(to: URL(fileURLWithPath: outputFile))
            }
        }
        if report.overall.completed == 0 { throw ExitCode(1) }
    }

    /// The served model's tokenizer: --tokenizer, a local --model folder, or
    /// the folder the server reports in /get_model_info (same host).
    private func loadTokenizer(_ probe: ServingClient, log: (String) -> Void) async throws -> Tokenizer {
        var candidates: [String] = [tokenizer, model].compactMap { $0 }
        if tokenizer == nil {
            let info = try await probe.getJSON("/get_model_info")
            candidates += ["tokenizer_path", "model_path"].compactMap { info[$0] as? String }
        }
        for path in candidates where FileManager.default.fileExists(atPath: path + "/tokenizer.json") {
            log("tokenizer: \(path)")
            return try Tokenizer(directory: URL(fileURLWithPath: path))
        }
        throw ValidationError("no tokenizer.json found in \(candidates.isEmpty ? "any folder" : candidates.joined(separator: ", ")); pass --tokenizer FOLDER")
    }
}
