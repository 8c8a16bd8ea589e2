/// Chooses one worker among the available candidates (never empty).
protocol RoutingPolicy: Sendable {
    /// `key` is the request's prompt text (or token ids as text), used by
    /// policies with prefix affinity; `candidates` is never empty.
    func select(_ candidates: [Worker], key: String) -> Worker
    /// The worker left the registry: drop what the policy remembers of it.
    func forget(url: String)
}

extension RoutingPolicy {
    func forget(url: String) {}
}

/// Builds the policy for a kind.
enum RoutingPolicies {
    static func make(_ kind: PolicyKind, cacheAware: CacheAwareSettings) -> any RoutingPolicy {
        switch kind {
        case .random: RandomPolicy()
        case .roundRobin: RoundRobinPolicy()
        case .powerOfTwo: PowerOfTwoPolicy()
        case .cacheAware: CacheAwarePolicy(settings: cacheAware)
        }
    }
}
