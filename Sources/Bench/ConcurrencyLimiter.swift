/// An async counting semaphore: `--max-concurrency` requests in flight at
/// most; the others wait in arrival order.
actor ConcurrencyLimiter {
    private var available: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(limit: Int) { available = limit }

    func acquire() async {
        if available > 0 {
            available -= 1
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    func release() {
        if waiting.isEmpty {
            available += 1
        } else {
            // The slot passes straight to the oldest waiter.
            waiting.removeFirst().resume()
        }
    }
}
