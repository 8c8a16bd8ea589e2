import Foundation

/// Serial job queues on dedicated threads. Each destination is pinned to
/// one queue, so its frames leave in order, while different destinations
/// proceed in parallel (SGLang's queue sharding by destination).
final class TransferWorkers: @unchecked Sendable {
    private final class Queue: @unchecked Sendable {
        let condition = NSCondition()
        var jobs: [() -> Void] = []
        var stopping = false

        func run() {
            while true {
                condition.lock()
                while jobs.isEmpty && !stopping { condition.wait() }
                if jobs.isEmpty && stopping { condition.unlock(); return }
                let job = jobs.removeFirst()
                condition.unlock()
                job()
            }
        }
    }

    private let queues: [Queue]

    init(count: Int, name: String) {
        queues = (0..<max(1, count)).map { _ in Queue() }
        for (i, queue) in queues.enumerated() {
            let thread = Thread { queue.run() }
            thread.name = "\(name)-\(i)"
            thread.start()
        }
    }

    var count: Int { queues.count }

    /// Runs `job` after every job previously given to the same `shard`.
    func submit(shard: Int, _ job: @escaping () -> Void) {
        let queue = queues[abs(shard) % queues.count]
        queue.condition.lock()
        queue.jobs.append(job)
        queue.condition.signal()
        queue.condition.unlock()
    }

    func stop() {
        for queue in queues {
            queue.condition.lock()
            queue.stopping = true
            queue.condition.broadcast()
            queue.condition.unlock()
        }
    }
}
