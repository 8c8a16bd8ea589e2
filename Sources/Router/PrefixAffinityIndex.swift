import Foundation

/// An approximate radix tree of the prompts sent to each worker: every
/// prompt is remembered as hashes of its prefixes at fixed block boundaries
/// (plus its full length), so "how much of this prompt did worker W already
/// see?" is a walk down the blocks until a hash is missing. Bounded per
/// worker; least recently used prefixes are dropped first. Thread-safe.
final class PrefixAffinityIndex: @unchecked Sendable {
    /// Prompt bytes per block: finer blocks match more exactly and cost more entries.
    static let blockBytes = 16

    private let lock = NSLock()
    private let maxEntriesPerWorker: Int
    private var entries: [String: [UInt64: UInt64]] = [:]
    private var clock: UInt64 = 0

    init(maxBytesPerWorker: Int) {
        maxEntriesPerWorker = max(64, maxBytesPerWorker / Self.blockBytes)
    }

    /// Hashes of the prefixes ending at each block boundary and at the end.
    static func prefixHashes(_ key: String) -> (hashes: [UInt64], lengths: [Int]) {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325 // FNV-1a offset basis
        var hashes: [UInt64] = []
        var lengths: [Int] = []
        var count = 0
        for byte in key.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
            count += 1
            if count % blockBytes == 0 {
                hashes.append(hash)
                lengths.append(count)
            }
        }
        if count % blockBytes != 0 {
            hashes.append(hash)
            lengths.append(count)
        }
        return (hashes, lengths)
    }

    /// Bytes of `key`'s longest prefix (at block granularity) that `url` has seen.
    func matchedBytes(_ key: (hashes: [UInt64], lengths: [Int]), url: String) -> Int {
        lock.lock()
        defer { lock.unlock() }
        guard let known = entries[url] else { return 0 }
        var matched = 0
        for (hash, length) in zip(key.hashes, key.lengths) {
            guard known[hash] != nil else { break }
            matched = length
        }
        return matched
    }

    /// Entries remembered for `url` (its "tree size").
    func size(url: String) -> Int {
        lock.lock()
        defer { lock.unlock() }
        return entries[url]?.count ?? 0
    }

    func insert(_ key: (hashes: [UInt64], lengths: [Int]), url: String) {
        lock.lock()
        defer { lock.unlock() }
        clock &+= 1
        let now = clock
        // In place: a copy taken out of `entries` and stored back would copy the whole table on every insert.
        entries[url, default: [:]].merge(key.hashes.lazy.map { ($0, now) }) { _, new in new }
        if let count = entries[url]?.count, count > maxEntriesPerWorker {
            // Evict the older half in one go so insertion stays amortised O(1).
            let keep = maxEntriesPerWorker / 2
            let cutoff = entries[url]!.values.sorted(by: >)[keep - 1]
            entries[url] = entries[url]!.filter { $0.value >= cutoff }
        }
    }

    func forget(url: String) {
        lock.lock()
        defer { lock.unlock() }
        entries[url] = nil
    }
}
