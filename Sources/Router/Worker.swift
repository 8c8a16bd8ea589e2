import Foundation

/// A worker as the router sees it at run time: readiness from health checks,
/// its circuit breaker, the load it last reported and the requests this
/// router has in flight on it. Thread-safe.
public final class Worker: @unchecked Sendable {
    public let spec: WorkerSpec
    private let lock = NSLock()
    private let healthSettings: HealthSettings
    private var ready: Bool
    private var healthFailures = 0
    private var healthSuccesses = 0
    /// A health check failed, or a request found no one listening, since the last good check.
    private var seenDown = false
    private var breaker: CircuitBreaker
    private var reportedRequests = 0
    private var reportedTokens = 0
    private var inFlight = 0
    private var lastError: String?

    init(spec: WorkerSpec, health: HealthSettings, breaker: CircuitBreakerSettings) {
        self.spec = spec
        self.healthSettings = health
        self.breaker = CircuitBreaker(settings: breaker)
        // Without health checks nothing would ever make a worker ready.
        self.ready = health.disabled
    }

    public var url: String { spec.url }
    public var role: WorkerRole { spec.role }

    private func locked<T>(_ body: () -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body()
    }

    /// Answered its health check(s) lately.
    public var isReady: Bool { locked { ready } }

    /// Ready and its circuit lets requests through.
    var isAvailable: Bool { locked { ready && breaker.allowsRequest() } }

    var circuitState: CircuitBreaker.State { locked { _ = breaker.allowsRequest(); return breaker.state } }

    /// What balancing compares: requests running or queued on the worker as
    /// it last reported them, but never less than what this router has in
    /// flight there right now (the report may be seconds old).
    var load: Int { locked { max(reportedRequests, inFlight) } }

    /// Tokens the worker last reported; breaks ties between equal loads.
    var reportedTokenLoad: Int { locked { reportedTokens } }

    func begin() { locked { inFlight += 1 } }
    func end() { locked { inFlight -= 1 } }

    /// A health check's outcome. Returns the new readiness when it changed.
    @discardableResult
    func recordHealth(ok: Bool, detail: String? = nil) -> Bool? {
        locked {
            let was = ready
            if ok {
                healthFailures = 0
                healthSuccesses += 1
                if seenDown { breaker.workerCameBack() }
                seenDown = false
                if !ready && healthSuccesses >= healthSettings.successThreshold { ready = true }
            } else {
                healthSuccesses = 0
                healthFailures += 1
                seenDown = true
                lastError = detail
                // A worker that never answered stays out from the first failure.
                if ready && healthFailures >= healthSettings.failureThreshold { ready = false }
            }
            return was == ready ? nil : ready
        }
    }

    /// A request could not reach the worker at all: take it out of rotation
    /// at once (the health checks put it back) instead of waiting for the
    /// next failed checks while clients keep hitting it.
    func markUnreachable(_ detail: String) {
        locked {
            guard !healthSettings.disabled else { return }
            seenDown = true
            ready = false
            healthSuccesses = 0
            lastError = detail
        }
    }

    /// Outcome of a request for the breaker: `failed` only for 5xx or no connection.
    func recordOutcome(failed: Bool, detail: String? = nil) {
        locked {
            if failed {
                breaker.recordFailure()
                lastError = detail
            } else {
                breaker.recordSuccess()
            }
        }
    }

    func recordLoad(requests: Int, tokens: Int) {
        locked {
            reportedRequests = requests
            reportedTokens = tokens
        }
    }

    /// The worker's entry in `GET /workers`.
    func summary() -> [String: Any] {
        locked {
            _ = breaker.allowsRequest()
            var out: [String: Any] = [
                "url": spec.url, "mode": spec.role.rawValue, "healthy": ready,
                "circuit_state": breaker.state.rawValue, "consecutive_failures": breaker.consecutiveFailures,
                "load": ["num_reqs": reportedRequests, "num_tokens": reportedTokens] as [String: Any],
                "in_flight": inFlight, "last_error": lastError ?? NSNull(),
            ]
            if spec.role == .prefill {
                out["bootstrap_port"] = spec.bootstrapPort ?? NSNull()
                out["bootstrap_health_url"] = spec.bootstrapHealthURL ?? NSNull()
            }
            return out
        }
    }
}
