/// How a worker is chosen among the available ones (sglang-router's `--policy` values).
public enum PolicyKind: String, Sendable, CaseIterable {
    /// Uniformly at random.
    case random
    /// In turn, over the workers available at the moment.
    case roundRobin = "round_robin"
    /// Two random candidates; the one with the lower load wins.
    case powerOfTwo = "power_of_two"
    /// Requests sharing a prompt prefix go to the same worker (its prefix
    /// cache already holds it), unless load is too uneven.
    case cacheAware = "cache_aware"
}
