/// Prefix affinity, as sglang-router's `cache_aware`: a prompt goes to the
/// worker that already saw the longest part of it (its prefix cache holds
/// those pages) when that part exceeds `cacheThreshold`; otherwise to the
/// worker that remembers the least (most room to cache something new).
/// When load is imbalanced beyond both balance thresholds, the least loaded
/// worker is chosen instead, and it learns the prompt.
struct CacheAwarePolicy: RoutingPolicy {
    let settings: CacheAwareSettings
    let index: PrefixAffinityIndex

    init(settings: CacheAwareSettings) {
        self.settings = settings
        index = PrefixAffinityIndex(maxBytesPerWorker: settings.maxTreeSize)
    }

    func select(_ candidates: [Worker], key: String) -> Worker {
        let prefixes = PrefixAffinityIndex.prefixHashes(key)
        let loads = candidates.map(\.load)
        let chosen: Worker
        if isImbalanced(loads) {
            chosen = candidates[loads.indices.min { loads[$0] < loads[$1] }!]
        } else {
            let total = max(1, prefixes.lengths.last ?? 0)
            let matches = candidates.map { index.matchedBytes(prefixes, url: $0.url) }
            let best = matches.indices.max { matches[$0] < matches[$1] }!
            if Double(matches[best]) / Double(total) > settings.cacheThreshold {
                chosen = candidates[best]
            } else {
                let sizes = candidates.map { index.size(url: $0.url) }
                chosen = candidates[sizes.indices.min { (sizes[$0], loads[$0]) < (sizes[$1], loads[$1]) }!]
            }
        }
        index.insert(prefixes, url: chosen.url)
        return chosen
    }

    func isImbalanced(_ loads: [Int]) -> Bool {
        guard let high = loads.max(), let low = loads.min() else { return false }
        return Double(high - low) > settings.balanceAbsThreshold && Double(high) > Double(low) * settings.balanceRelThreshold
    }

    func forget(url: String) { index.forget(url: url) }
}
