import Testing
@testable import Router

/// Each policy's choice among ready workers.
@Suite struct PolicyTests {
    func workers(_ count: Int) -> [Worker] {
        var health = HealthSettings()
        health.disabled = true // ready from the start
        return (0..<count).map { Worker(spec: try! WorkerSpec(url: "http://w\($0):1", role: .regular), health: health, breaker: .init()) }
    }

    @Test func roundRobinAlternates() {
        let pool = workers(2)
        let policy = RoundRobinPolicy()
        let picks = (0..<6).map { _ in policy.select(pool, key: "").url }
        #expect(picks == ["http://w0:1", "http://w1:1", "http://w0:1", "http://w1:1", "http://w0:1", "http://w1:1"])
    }

    @Test func powerOfTwoPrefersLowerLoad() {
        let pool = workers(2)
        pool[0].recordLoad(requests: 9, tokens: 100)
        let policy = PowerOfTwoPolicy()
        for _ in 0..<20 { #expect(policy.select(pool, key: "").url == "http://w1:1") }
    }

    @Test func cacheAwareKeepsASharedPrefixTogether() {
        let pool = workers(3)
        let policy = CacheAwarePolicy(settings: .init())
        let shared = String(repeating: "You are a helpful assistant. ", count: 8)
        let first = policy.select(pool, key: shared + "Question one?").url
        for i in 0..<10 {
            #expect(policy.select(pool, key: shared + "Question \(i) is different").url == first)
        }
    }

    @Test func cacheAwareSpreadsUnrelatedPrompts() {
        let pool = workers(2)
        let policy = CacheAwarePolicy(settings: .init())
        let a = policy.select(pool, key: String(repeating: "alpha ", count: 20)).url
        let b = policy.select(pool, key: String(repeating: "omega ", count: 20)).url
        #expect(a != b) // the second goes to the worker that holds less
    }

    @Test func cacheAwareBalancesWhenLoadIsUneven() {
        let pool = workers(2)
        var settings = CacheAwareSettings()
        settings.balanceAbsThreshold = 4
        settings.balanceRelThreshold = 1.5
        let policy = CacheAwarePolicy(settings: settings)
        let prompt = String(repeating: "shared prefix ", count: 10)
        let home = policy.select(pool, key: prompt)
        home.recordLoad(requests: 20, tokens: 0)
        #expect(policy.select(pool, key: prompt).url != home.url)
    }

    @Test func prefixIndexMatchesAtBlockGranularity() {
        let index = PrefixAffinityIndex(maxBytesPerWorker: 1 << 20)
        let base = String(repeating: "x", count: 64)
        index.insert(PrefixAffinityIndex.prefixHashes(base), url: "w")
        #expect(index.matchedBytes(PrefixAffinityIndex.prefixHashes(base + "tail"), url: "w") == 64)
        #expect(index.matchedBytes(PrefixAffinityIndex.prefixHashes("y" + base), url: "w") == 0)
    }

    @Test func prefixIndexStaysBounded() {
        let index = PrefixAffinityIndex(maxBytesPerWorker: 64 * PrefixAffinityIndex.blockBytes)
        for i in 0..<200 { index.insert(PrefixAffinityIndex.prefixHashes("prompt number \(i) " + String(repeating: "z", count: 40)), url: "w") }
        #expect(index.size(url: "w") <= 64)
    }

    /// Two generations: a prefix used within the last half-bound of
    /// insertions is still known; one not used for a whole bound is gone.
    @Test func prefixIndexKeepsWhatIsUsedAndForgetsTheRest() {
        let index = PrefixAffinityIndex(maxBytesPerWorker: 64 * PrefixAffinityIndex.blockBytes)
        let hot = PrefixAffinityIndex.prefixHashes(String(repeating: "hot ", count: 8)), cold = PrefixAffinityIndex.prefixHashes(String(repeating: "cold", count: 8))
        index.insert(hot, url: "w")
        index.insert(cold, url: "w")
        for i in 0..<200 {
            index.insert(PrefixAffinityIndex.prefixHashes("filler \(i) " + String(repeating: "f", count: 20)), url: "w")
            if i % 5 == 0 { index.insert(hot, url: "w") }
        }
        #expect(index.matchedBytes(hot, url: "w") == 32)
        #expect(index.matchedBytes(cold, url: "w") == 0)
    }
}
