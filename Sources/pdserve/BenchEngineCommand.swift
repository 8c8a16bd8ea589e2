import ArgumentParser
import Engine
import Foundation
import Kernels
import Models

/// `pdserve bench engine`: offline throughput of the engine itself (no
/// server, no tokenizer in the loop): prefill tokens/s, decode tokens/s per
/// batch size, and how close decode comes to the machine's memory bandwidth.
struct BenchEngineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine",
        abstract: "Measure prefill and decode throughput of the engine, and memory bandwidth.",
        discussion: """
        Prefill: --num-prompts prompts of --prompt-len tokens, one at a time, each in a single step
        (prefix cache off). Decode: for each --batch, that many requests with --decode-prompt-len
        token prompts decode --decode-tokens tokens each (greedy, ignore EOS); only the decode steps
        are timed. One warm-up, then --repeats runs; medians are reported.
        """
    )

    @Option(name: .customLong("model-path"), help: "Local checkpoint folder, or 'demo'.")
    var modelPath: String = "demo"
    @Option(name: .customLong("prompt-len"), help: "Tokens per prefill prompt.")
    var promptLen: Int = 512
    @Option(name: .customLong("num-prompts"), help: "Prompts per prefill run.")
    var numPrompts: Int = 4
    @Option(name: .customLong("batch"), parsing: .upToNextOption, help: "Decode batch sizes (space or comma separated).")
    var batch: [String] = ["1", "16"]
    @Option(name: .customLong("decode-tokens"), help: "Decode steps timed per request.")
    var decodeTokens: Int = 64
    @Option(name: .customLong("decode-prompt-len"), help: "Prompt tokens of each decode request.")
    var decodePromptLen: Int = 32
    @Option(help: "Timed runs per measurement (median reported).")
    var repeats: Int = 3
    @Option(help: "Compute threads (default: all cores).")
    var threads: Int?
    @Option(name: .customLong("kv-cache-dtype"), help: "KV element type: float32 or bfloat16.")
    var kvCacheDType: String = "float32"
    @Option(name: .customLong("matmul-precision"),
            help: ArgumentHelp("Precision of linear layers with many rows (prefill): fp32 or bf16.",
                               discussion: MatmulPrecisionHelp.discussion))
    var matmulPrecision: String = MatmulPrecision.fp32.rawValue
    @Option(name: .customLong("probe-mib"), help: "Buffer size of the memory-bandwidth probe (0 skips it).")
    var probeMiB: Int = 512
    @Option(name: .customLong("output-file"), help: "Write the results as JSON here.")
    var outputFile: String?

    var batchSizes: [Int] { batch.flatMap { $0.split(separator: ",") }.compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }

    func validate() throws {
        guard promptLen >= 1, numPrompts >= 1, decodeTokens >= 1, decodePromptLen >= 1, repeats >= 1 else {
            throw ValidationError("--prompt-len, --num-prompts, --decode-tokens, --decode-prompt-len and --repeats must be at least 1")
        }
        guard !batchSizes.isEmpty, batchSizes.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--batch takes positive integers, e.g. 1,16") }
        guard DType(name: kvCacheDType) != nil else { throw ValidationError("--kv-cache-dtype must be float32 or bfloat16") }
        guard MatmulPrecision(rawValue: matmulPrecision) != nil else { throw ValidationError(MatmulPrecisionHelp.invalid(matmulPrecision)) }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        let threadCount = threads ?? ProcessInfo.processInfo.activeProcessorCount
        var report: [String: Any] = [
            "engine": "pdserve", "model_path": modelPath, "threads": threadCount, "prompt_len": promptLen,
            "num_prompts": numPrompts, "decode_tokens": decodeTokens, "decode_prompt_len": decodePromptLen,
            "repeats": repeats, "kv_cache_dtype": kvCacheDType, "date": ISO8601DateFormatter().string(from: Date()),
            "cpu": BenchMachine.cpuName, "cores": ProcessInfo.processInfo.activeProcessorCount,
        ]
        // The probe runs first, before the engine's pool exists, so nothing else spins on the cores.
        var probeAll: Double?
        if probeMiB > 0 {
            let single = MemoryProbe.readBandwidth(pool: ComputePool(threads: 1), bytes: probeMiB << 20)
            benchLog(String(format: "memory read probe: %.1f GB/s on 1 thread", single))
            let all = MemoryProbe.readBandwidth(pool: ComputePool(threads: threadCount), bytes: probeMiB << 20)
            benchLog(String(format: "memory read probe: %.1f GB/s on %d threads", all, threadCount))
            report["membw_read_gbs_1thread"] = single
            report["membw_read_gbs_all"] = all
            probeAll = all
        }

        let core = try ModelLoader.load(modelPath: modelPath, options: engineOptions(threads: threadCount), progress: benchLog)
        let runner = EngineBenchRunner(core: core)
        report["params"] = core.model.parameterCount
        report["weight_dtype"] = core.model.weightDTypeName
        // The precision that ran (bf16 falls back to fp32 on CPUs without AVX512_BF16).
        report["matmul_precision"] = core.options.matmulPrecision.rawValue
        report["packed_weight_bytes"] = core.model.packedWeightBytes

        benchLog("warm-up")
        _ = runner.prefill(prompts: [runner.prompt(length: promptLen, seed: 999)])
        // No larger than the largest measured batch: the engine runs at most that many requests at once.
        _ = runner.decode(batch: min(2, batchSizes.max() ?? 1), promptLen: decodePromptLen, tokens: 4, seed: 998)

        var prefillRuns: [Double] = []
        for r in 0..<repeats {
            let prompts = (0..<numPrompts).map { runner.prompt(length: promptLen, seed: r * numPrompts + $0) }
            let seconds = runner.prefill(prompts: prompts)
            prefillRuns.append(Double(numPrompts * promptLen) / seconds)
            benchLog(String(format: "prefill run %d: %.1f tok/s (%d × %d tokens in %.3f s)", r + 1, prefillRuns.last!, numPrompts, promptLen, seconds))
        }
        report["prefill_tok_s"] = median(prefillRuns)
        report["prefill_tok_s_runs"] = prefillRuns
        benchLog(String(format: "prefill: %.1f tok/s (median)", median(prefillRuns)))

        var decodeResults: [[String: Any]] = []
        for b in batchSizes {
            var runs: [Double] = []
            for r in 0..<repeats {
                let seconds = runner.decode(batch: b, promptLen: decodePromptLen, tokens: decodeTokens, seed: 1000 * b + r)
                runs.append(Double(b * decodeTokens) / seconds)
                benchLog(String(format: "decode batch %d run %d: %.1f tok/s (%.2f ms/step)", b, r + 1, runs.last!, seconds / Double(decodeTokens) * 1000))
            }
            let tokS = median(runs)
            decodeResults.append(["batch": b, "tok_s": tokS, "step_ms": 1000 * Double(b) / tokS, "runs": runs])
            benchLog(String(format: "decode batch %d: %.1f tok/s (median)", b, tokS))
            if b == 1 {
                // At batch 1 a decode step is dominated by streaming every weight once.
                let bytes = core.model.linearWeightBytesPerToken
                let gbs = Double(bytes) * tokS / 1e9
                var gemv: [String: Any] = ["bytes_per_step": bytes, "gbs": gbs]
                if let probeAll { gemv["fraction_of_probe"] = gbs / probeAll }
                report["gemv"] = gemv
                benchLog(String(format: "decode GEMV: %.1f MB per step, %.1f GB/s%@", Double(bytes) / 1e6, gbs,
                                probeAll.map { String(format: " = %.2f of the probe", gbs / $0) } ?? ""))
            }
        }
        report["decode"] = decodeResults

        if let outputFile {
            let data = try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys])
            try data.write(to: URL(fileURLWithPath: outputFile))
            benchLog("wrote \(outputFile)")
        }
    }

    /// One step takes a whole prompt or a whole decode batch; the cache holds them all; nothing is reused.
    private func engineOptions(threads: Int) -> EngineOptions {
        var o = EngineOptions()
        let maxBatch = batchSizes.max() ?? 1
        o.threads = threads
        o.enablePrefixCache = false
        o.chunkedPrefillSize = max(promptLen, maxBatch * decodePromptLen)
        o.maxRunningRequests = max(maxBatch, 1)
        o.kvCacheDType = DType(name: kvCacheDType) ?? .f32
        o.matmulPrecision = MatmulPrecision(rawValue: matmulPrecision) ?? .fp32
        o.maxTotalTokens = max(promptLen + 16, maxBatch * (decodePromptLen + decodeTokens + 16)) + 64
        return o
    }
}

/// Drives an `EngineCore` step by step and times the parts that matter.
struct EngineBenchRunner {
    let core: EngineCore
    private var nextID = 0

    init(core: EngineCore) { self.core = core }

    /// Deterministic token ids, the same formula as bench/hf_engine_bench.py,
    /// avoiding the lowest ids (special tokens in most vocabularies).
    func prompt(length: Int, seed: Int) -> [Int] {
        let vocab = core.model.config.vocabSize
        return (0..<length).map { i in 3 + (i * 7919 + seed * 104_729 + 17) % (vocab - 3) }
    }

    private func params(maxNewTokens: Int) -> SamplingParams {
        var p = SamplingParams()
        p.temperature = 0
        p.ignoreEOS = true
        p.maxNewTokens = maxNewTokens
        return p
    }

    /// Seconds to prefill the prompts one after another (each produces one token).
    func prefill(prompts: [[Int]]) -> Double {
        var total = 0.0
        for (i, prompt) in prompts.enumerated() {
            try! core.add(GenerateInput(id: "prefill-\(i)", promptTokens: prompt, params: params(maxNewTokens: 1)))
            let start = now()
            while core.hasWork { _ = core.step() }
            total += now() - start
        }
        return total
    }

    /// Seconds spent in the decode steps of `batch` requests generating `tokens` tokens each after their first.
    func decode(batch: Int, promptLen: Int, tokens: Int, seed: Int) -> Double {
        for i in 0..<batch {
            try! core.add(GenerateInput(id: "decode-\(i)", promptTokens: prompt(length: promptLen, seed: seed * 100 + i),
                                        params: params(maxNewTokens: tokens + 1)))
        }
        // Prefill until every request has its first token; those steps are not timed.
        var started = Set<String>()
        while started.count < batch {
            for update in core.step() where !update.newTokens.isEmpty { started.insert(update.id) }
        }
        let start = now()
        var produced = 0
        while core.hasWork { produced += core.step().reduce(0) { $0 + $1.newTokens.count } }
        let seconds = now() - start
        precondition(produced == batch * tokens, "decode produced \(produced) tokens, expected \(batch * tokens)")
        return seconds
    }

    private func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
}

func benchLog(_ line: String) { FileHandle.standardError.write(Data((line + "\n").utf8)) }

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

enum BenchMachine {
    /// The CPU's marketing name, for reports.
    static var cpuName: String {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown" }
        let line = text.split(separator: "\n").first { $0.hasPrefix("model name") }
        return line.flatMap { $0.split(separator: ":", maxSplits: 1).last }.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown"
    }
}
