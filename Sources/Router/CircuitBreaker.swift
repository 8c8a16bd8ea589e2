/// One worker's circuit: closed (in use), open (skipped after repeated
/// failures), half-open (trial requests after a cooldown). Only failures
/// that say the worker is broken count — a 5xx or no connection; a 4xx is
/// the client's fault and never opens it.
struct CircuitBreaker: Sendable {
    enum State: String, Sendable {
        case closed, open
        case halfOpen = "half_open"

        /// Gauge value for metrics: 0 closed, 1 open, 2 half-open.
        var gauge: Double {
            switch self {
            case .closed: 0
            case .open: 1
            case .halfOpen: 2
            }
        }
    }

    let settings: CircuitBreakerSettings
    private(set) var state = State.closed
    private(set) var consecutiveFailures = 0
    private var halfOpenSuccesses = 0
    private var openedAt: ContinuousClock.Instant?

    init(settings: CircuitBreakerSettings) { self.settings = settings }

    /// Whether a request may go to the worker now; moves open to half-open once the cooldown passed.
    mutating func allowsRequest(now: ContinuousClock.Instant = .now) -> Bool {
        if state == .open, let openedAt, now - openedAt >= .seconds(settings.cooldownSeconds) {
            state = .halfOpen
            halfOpenSuccesses = 0
        }
        return state != .open
    }

    /// The worker was seen down and answers its health check again (a
    /// restart): an open circuit goes half-open now instead of waiting out
    /// its cooldown, so the next request is its trial.
    mutating func workerCameBack() {
        guard state == .open else { return }
        state = .halfOpen
        halfOpenSuccesses = 0
    }

    mutating func recordSuccess() {
        consecutiveFailures = 0
        if state == .halfOpen {
            halfOpenSuccesses += 1
            if halfOpenSuccesses >= settings.successThreshold { state = .closed }
        }
    }

    mutating func recordFailure(now: ContinuousClock.Instant = .now) {
        consecutiveFailures += 1
        guard settings.enabled else { return }
        // One failed trial is enough to reopen: the cooldown starts again.
        if state == .halfOpen || consecutiveFailures >= settings.failureThreshold {
            state = .open
            openedAt = now
        }
    }
}
