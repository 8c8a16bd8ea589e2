import Foundation

/// Whether an instance takes new requests. Draining (`POST /drain` or
/// SIGTERM) is one-way: requests already admitted finish, new ones get a
/// retryable 503, and `/health` and `/readiness` fail so that routers stop
/// sending here.
final class InstanceLifecycle: @unchecked Sendable {
    private let lock = NSLock()
    private var draining = false

    var isDraining: Bool { lock.withLock { draining } }

    /// Starts draining; true the first time.
    @discardableResult
    func drain() -> Bool {
        lock.withLock {
            defer { draining = true }
            return !draining
        }
    }
}
