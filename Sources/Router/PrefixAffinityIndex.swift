import Foundation

/// An approximate radix tree of the prompts sent to each worker: every
/// prompt is remembered as hashes of its prefixes at fixed block boundaries
/// (plus its full length), so "how much of this prompt did worker W already
/// see?" is a walk down the blocks until a hash is missing. Bounded per
/// worker by two generations, an approximate LRU with no sort and no copy:
/// prefixes go into the current generation; when it would pass half the
/// bound, the previous one is dropped and the current one takes its place. A
/// prefix used again joins the current generation, so what was used within
/// the last half-bound of insertions is never forgotten. Thread-safe.
final class PrefixAffinityIndex: @unchecked Sendable {
    /// Prompt bytes per block: finer blocks match more exactly and cost more entries.
    static let blockBytes = 16

    private struct Generations {
        var current = Set<UInt64>()
        var previous = Set<UInt64>()

        func contains(_ hash: UInt64) -> Bool { current.contains(hash) || previous.contains(hash) }
        var count: Int { current.count + previous.count }
    }

    private let lock = NSLock()
    private let maxEntriesPerWorker: Int
    private var workers: [String: Generations] = [:]

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
        guard let known = workers[url] else { return 0 }
        var matched = 0
        for (hash, length) in zip(key.hashes, key.lengths) {
            guard known.contains(hash) else { break }
            matched = length
        }
        return matched
    }

    /// Entries remembered for `url` (its "tree size"; a prefix in both generations counts twice).
    func size(url: String) -> Int {
        lock.lock()
        defer { lock.unlock() }
        return workers[url]?.count ?? 0
    }

    func insert(_ key: (hashes: [UInt64], lengths: [Int]), url: String) {
        lock.lock()
        defer { lock.unlock() }
        // Taken out and put back: the sets stay uniquely referenced, so they grow in place, uncopied.
        var known = workers.removeValue(forKey: url) ?? Generations()
        if known.current.count + key.hashes.count > maxEntriesPerWorker / 2 {
            known.previous = known.current
            known.current = []
        }
        known.current.formUnion(key.hashes)
        workers[url] = known
    }

    func forget(url: String) {
        lock.lock()
        defer { lock.unlock() }
        workers[url] = nil
    }
}
