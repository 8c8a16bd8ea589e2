import Foundation

/// The workers the router knows, in the order they were added. Thread-safe;
/// workers come and go at run time through `/workers`.
public final class WorkerRegistry: @unchecked Sendable {
    private let lock = NSLock()
    private var workers: [Worker] = []
    let health: HealthSettings
    let breaker: CircuitBreakerSettings

    init(health: HealthSettings, breaker: CircuitBreakerSettings) {
        self.health = health
        self.breaker = breaker
    }

    /// Adds a worker; a URL already present is refused.
    @discardableResult
    func add(_ spec: WorkerSpec) throws(RouterSetupError) -> Worker {
        lock.lock()
        defer { lock.unlock() }
        guard !workers.contains(where: { $0.url == spec.url }) else {
            throw RouterSetupError("worker \(spec.url) is already registered")
        }
        let worker = Worker(spec: spec, health: health, breaker: breaker)
        workers.append(worker)
        return worker
    }

    /// Removes the worker with this URL; nil when there is none.
    func remove(url: String) -> Worker? {
        lock.lock()
        defer { lock.unlock() }
        guard let index = workers.firstIndex(where: { $0.url == url }) else { return nil }
        return workers.remove(at: index)
    }

    var all: [Worker] {
        lock.lock()
        defer { lock.unlock() }
        return workers
    }

    func workers(_ role: WorkerRole) -> [Worker] { all.filter { $0.role == role } }

    /// Workers of `role` that may take a request now. Workers in `excluding`
    /// (those that just failed this request) are left out unless nothing else is left.
    /// Available workers of `role`, those in `excluding` only when nothing
    /// else is left (a retry may go back to a worker that failed once), those
    /// in `full` never (a worker that answered overloaded is not asked again
    /// for this request).
    func available(_ role: WorkerRole, excluding: Set<String> = [], full: Set<String> = []) -> [Worker] {
        let candidates = workers(role).filter { $0.isAvailable && !full.contains($0.url) }
        let fresh = candidates.filter { !excluding.contains($0.url) }
        return fresh.isEmpty ? candidates : fresh
    }
}
