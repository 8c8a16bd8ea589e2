import Foundation

/// The available workers in turn. The turn counter is shared, so with a
/// stable set of workers consecutive requests alternate exactly.
final class RoundRobinPolicy: RoutingPolicy, @unchecked Sendable {
    private let lock = NSLock()
    private var next = 0

    func select(_ candidates: [Worker], key: String) -> Worker {
        lock.lock()
        defer { lock.unlock() }
        let chosen = candidates[next % candidates.count]
        next &+= 1
        if next < 0 { next = 0 }
        return chosen
    }
}
