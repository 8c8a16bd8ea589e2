import ArgumentParser
import Engine
import Foundation
import Kernels

/// Flags that size and schedule the engine (SGLang's names).
struct EngineFlags: ParsableArguments {
    @Option(name: .customLong("model-path"), help: "Local Hugging Face checkpoint folder (config.json, *.safetensors, tokenizer.json), or 'demo' for the built-in random-weight demo model.")
    var modelPath: String = "demo"

    @Option(name: .customLong("page-size"), help: "Tokens per KV cache page.")
    var pageSize: Int = 16

    @Option(name: .customLong("max-total-tokens"), help: "KV cache capacity in tokens (default: as many as fit in 2 GiB).")
    var maxTotalTokens: Int?

    @Option(name: .customLong("max-running-requests"), help: "Most requests decoding at once.")
    var maxRunningRequests: Int = 64

    @Option(name: .customLong("num-reserved-decode-tokens"),
            help: "PD decode: admit a request only while every request decoding here keeps room for its next this many output tokens (or all it has left), so admitting never forces a retraction.")
    var numReservedDecodeTokens: Int = EngineOptions().reservedDecodeTokens

    @Option(name: .customLong("chunked-prefill-size"), help: "Most prompt tokens run in one step; longer prompts are split into chunks.")
    var chunkedPrefillSize: Int = 512

    @Option(name: .customLong("kv-cache-dtype"), help: "KV cache element type: float32 or bfloat16.")
    var kvCacheDType: String = "float32"

    @Option(name: .customLong("matmul-precision"),
            help: ArgumentHelp("Precision of linear layers with many rows (prefill): fp32 or bf16.",
                               discussion: MatmulPrecisionHelp.discussion))
    var matmulPrecision: String = MatmulPrecision.fp32.rawValue

    @Option(name: .customLong("context-length"), help: "Longest prompt + output (default: the model's max_position_embeddings).")
    var contextLength: Int?

    @Option(name: .customLong("threads"), help: "Compute threads (default: all cores).")
    var threads: Int?

    @Option(name: .customLong("schedule-policy"), help: ArgumentHelp("Order in which waiting requests are admitted.", discussion: SchedulePolicy.help))
    var schedulePolicy: String = SchedulePolicy.fcfs.rawValue

    @Flag(name: .customLong("enable-priority-scheduling"), help: "Admit waiting requests by their 'priority' first (larger first), then by --schedule-policy; a request that cannot start preempts running ones of lower priority. Without it a request giving a priority is refused.")
    var enablePriorityScheduling = false

    @Flag(name: .customLong("schedule-low-priority-values-first"), help: "With --enable-priority-scheduling: smaller 'priority' values first.")
    var scheduleLowPriorityValuesFirst = false

    @Flag(name: .customLong("disable-priority-preemption"), help: "With --enable-priority-scheduling: never send a running request back to the queue for a more urgent one.")
    var disablePriorityPreemption = false

    @Option(name: .customLong("priority-scheduling-preemption-threshold"),
            help: "With --enable-priority-scheduling: a waiting request preempts a running one only when its priority is more urgent by more than this.")
    var priorityPreemptionThreshold = 10

    @Option(name: .customLong("default-priority-value"), help: "With --enable-priority-scheduling: the priority of a request that gives none.")
    var defaultPriorityValue = 0

    @Flag(name: .customLong("disable-radix-cache"), help: "Do not reuse the KV cache of shared prompt prefixes.")
    var disableRadixCache = false

    /// `--schedule-policy`'s value, checked the same for `serve` and `up`.
    static func checkSchedulePolicy(_ value: String) throws {
        guard SchedulePolicy(rawValue: value) == nil else { return }
        let known = value == "dfs-weight" ? " (SGLang's dfs-weight is not built)" : ""
        throw ValidationError("--schedule-policy \(value)\(known): use one of \(SchedulePolicy.allCases.map(\.rawValue).joined(separator: ", "))")
    }

    func validate() throws {
        guard pageSize >= 1, pageSize <= 1024 else { throw ValidationError("--page-size must be in 1...1024") }
        guard maxRunningRequests >= 1 else { throw ValidationError("--max-running-requests must be at least 1") }
        guard numReservedDecodeTokens >= 0 else { throw ValidationError("--num-reserved-decode-tokens must be >= 0") }
        guard chunkedPrefillSize >= 1 else { throw ValidationError("--chunked-prefill-size must be at least 1") }
        guard DType(name: kvCacheDType) != nil else { throw ValidationError("--kv-cache-dtype must be float32 or bfloat16, got \(kvCacheDType)") }
        guard MatmulPrecision(rawValue: matmulPrecision) != nil else { throw ValidationError(MatmulPrecisionHelp.invalid(matmulPrecision)) }
        if let maxTotalTokens, maxTotalTokens < pageSize { throw ValidationError("--max-total-tokens must be at least one page (\(pageSize))") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if !enablePriorityScheduling, scheduleLowPriorityValuesFirst {
            throw ValidationError("--schedule-low-priority-values-first needs --enable-priority-scheduling")
        }
        if !enablePriorityScheduling, disablePriorityPreemption {
            throw ValidationError("--disable-priority-preemption needs --enable-priority-scheduling")
        }
        guard priorityPreemptionThreshold >= 0 else { throw ValidationError("--priority-scheduling-preemption-threshold must be >= 0") }
        try Self.checkSchedulePolicy(schedulePolicy)
    }

    var options: EngineOptions {
        var o = EngineOptions()
        o.pageSize = pageSize
        o.maxTotalTokens = maxTotalTokens
        o.maxRunningRequests = maxRunningRequests
        o.reservedDecodeTokens = numReservedDecodeTokens
        o.chunkedPrefillSize = chunkedPrefillSize
        o.kvCacheDType = DType(name: kvCacheDType) ?? .f32
        o.matmulPrecision = MatmulPrecision(rawValue: matmulPrecision) ?? .fp32
        o.contextLength = contextLength
        o.threads = threads ?? ProcessInfo.processInfo.activeProcessorCount
        o.enablePrefixCache = !disableRadixCache
        o.schedulePolicy = SchedulePolicy(rawValue: schedulePolicy) ?? .fcfs
        if enablePriorityScheduling {
            o.priorityScheduling = PriorityScheduling(lowValuesFirst: scheduleLowPriorityValuesFirst, defaultValue: defaultPriorityValue,
                                                      preemptionThreshold: disablePriorityPreemption ? nil : priorityPreemptionThreshold)
        }
        return o
    }
}

/// `--matmul-precision` help, shared by `serve`, `generate` and `bench engine`.
enum MatmulPrecisionHelp {
    static let discussion = """
        fp32 (default): activations stay fp32 and products are summed in fp32 over exactly widened weights; \
        logits match transformers' fp32. bf16: linear layers with at least \(MatmulPrecision.bf16MinimumRows) rows \
        (prefill chunks, large batches) round their activations to bfloat16 and use AVX512_BF16 dot products: faster \
        prefill, logits differ slightly from fp32 (like transformers with dtype=bfloat16). Smaller layers (decode) stay fp32. \
        Needs a CPU with AVX512_BF16, else fp32 runs with a warning; fp32 checkpoints get an extra bf16 copy of their \
        weights (half their size).
        """

    static func invalid(_ value: String) -> String { "--matmul-precision must be fp32 or bf16, got \(value)" }
}
