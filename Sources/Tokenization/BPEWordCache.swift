import Foundation

/// Thread-safe memo of word → token ids for the BPE model.
///
/// Natural text repeats the same words constantly, and merging is the expensive step, so
/// remembering results pays off. The cache is bounded: once full it stops growing rather
/// than evicting, which keeps it simple and the hot words (seen early) stay in.
final class BPEWordCache: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [TokenKey: [Int32]] = [:]
    private let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    func get(_ key: TokenKey) -> [Int32]? {
        lock.lock()
        defer { lock.unlock() }
        return entries[key]
    }

    func set(_ key: TokenKey, _ value: [Int32]) {
        lock.lock()
        defer { lock.unlock() }
        if entries.count < capacity { entries[key] = value }
    }
}
