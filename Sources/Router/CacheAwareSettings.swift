/// Tuning of the `cache_aware` policy (sglang-router's flags of the same names).
public struct CacheAwareSettings: Sendable {
    /// Share of a prompt that must already be cached on a worker for the prompt to follow it.
    public var cacheThreshold = 0.3
    /// Load is "imbalanced" when `max - min > balanceAbsThreshold` …
    public var balanceAbsThreshold = 64.0
    /// … and `max > min * balanceRelThreshold`; then the least loaded worker is chosen.
    public var balanceRelThreshold = 1.5
    /// Prompt bytes remembered per worker; the least recently used prefixes go first.
    public var maxTreeSize = 64 << 20

    public init() {}
}
