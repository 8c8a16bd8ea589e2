import Kernels

/// Engine sizing and scheduling knobs (the CLI maps SGLang-named flags onto these).
public struct EngineOptions: Sendable {
    /// Tokens per KV page (`--page-size`).
    public var pageSize = 16
    /// KV pool capacity in tokens (`--max-total-tokens`); nil sizes it from `kvCacheBudgetBytes`.
    public var maxTotalTokens: Int?
    /// Memory for the KV pool when `maxTotalTokens` is not given.
    public var kvCacheBudgetBytes = 2 << 30
    /// Requests decoding at once (`--max-running-requests`); a PD decode
    /// counts those whose pages it reserved too.
    public var maxRunningRequests = 64
    /// A PD decode admits a request only while the pool keeps, for every
    /// request that decodes here, room for its next this many output tokens
    /// (or all it has left), so an admission never forces a retraction
    /// (SGLang's `--num-reserved-decode-tokens`).
    public var reservedDecodeTokens = 512
    /// Prompt tokens processed per step (`--chunked-prefill-size`).
    public var chunkedPrefillSize = 512
    /// KV element type (`--kv-cache-dtype`).
    public var kvCacheDType: DType = .f32
    /// How linear layers with many activation rows multiply (`--matmul-precision`).
    /// `.bf16` falls back to `.fp32`, with a warning at load, on CPUs without AVX512_BF16.
    public var matmulPrecision: MatmulPrecision = .fp32
    /// Compute threads, the engine thread included.
    public var threads = 1
    /// Longest prompt + output; nil means the model's max_position_embeddings.
    public var contextLength: Int?
    /// The order waiting requests are admitted in (`--schedule-policy`).
    public var schedulePolicy: SchedulePolicy = .fcfs
    /// Requests' `priority` orders the waiting queue before the policy does
    /// (`--enable-priority-scheduling`); nil refuses requests that give one.
    public var priorityScheduling: PriorityScheduling?
    /// Reuse KV pages of shared prompt prefixes.
    public var enablePrefixCache = true
    /// Put the KV pool in this shared-memory file (decode side of the shm transfer backend).
    public var kvSharedMemoryPath: String?

    public init() {}
}
