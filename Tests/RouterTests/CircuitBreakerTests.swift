import Testing
@testable import Router

/// The breaker opens only after the configured run of failures, lets trial
/// requests through after the cooldown, and closes again on success.
@Suite struct CircuitBreakerTests {
    func settings(threshold: Int = 3, cooldown: Double = 10, successes: Int = 1) -> CircuitBreakerSettings {
        var s = CircuitBreakerSettings()
        s.failureThreshold = threshold
        s.cooldownSeconds = cooldown
        s.successThreshold = successes
        return s
    }

    @Test func opensAfterConsecutiveFailuresOnly() {
        var breaker = CircuitBreaker(settings: settings())
        breaker.recordFailure()
        breaker.recordFailure()
        breaker.recordSuccess() // resets the run
        breaker.recordFailure()
        breaker.recordFailure()
        #expect(breaker.state == .closed)
        breaker.recordFailure()
        #expect(breaker.state == .open)
        let allowed = breaker.allowsRequest()
        #expect(!allowed)
    }

    @Test func aWorkerThatCameBackHalfOpensItsCircuitBeforeTheCooldown() {
        var breaker = CircuitBreaker(settings: settings(threshold: 1, cooldown: 60))
        breaker.recordFailure()
        #expect(breaker.state == .open)
        breaker.workerCameBack()
        #expect(breaker.state == .halfOpen)
        breaker.recordSuccess()
        #expect(breaker.state == .closed)
        breaker.workerCameBack() // a closed circuit stays closed
        #expect(breaker.state == .closed)
    }

    /// Only a worker seen down (a failed check, or no one listening) and then
    /// healthy half-opens its circuit: one whose checks pass while its
    /// requests fail keeps the cooldown.
    @Test func onlyAGoodCheckAfterTheWorkerWasDownHalfOpensTheCircuit() {
        var health = HealthSettings()
        health.successThreshold = 1
        var breakerSettings = settings(threshold: 1, cooldown: 60)
        breakerSettings.enabled = true
        let worker = Worker(spec: try! WorkerSpec(url: "http://w:1", role: .regular), health: health, breaker: breakerSettings)
        worker.recordHealth(ok: true)
        worker.recordOutcome(failed: true, detail: "answered 500")
        #expect(worker.circuitState == .open)
        worker.recordHealth(ok: true)
        #expect(worker.circuitState == .open)
        worker.markUnreachable("connection refused")
        worker.recordHealth(ok: false, detail: "refused")
        #expect(worker.circuitState == .open)
        worker.recordHealth(ok: true)
        #expect(worker.circuitState == .halfOpen)
        #expect(worker.isAvailable)
    }

    @Test func halfOpensAfterCooldownAndClosesOnSuccess() {
        var breaker = CircuitBreaker(settings: settings(threshold: 1, cooldown: 5))
        let start = ContinuousClock.now
        breaker.recordFailure(now: start)
        let early = breaker.allowsRequest(now: start + .seconds(4))
        #expect(!early)
        let later = breaker.allowsRequest(now: start + .seconds(6))
        #expect(later)
        #expect(breaker.state == .halfOpen)
        breaker.recordSuccess()
        #expect(breaker.state == .closed)
    }

    @Test func failedTrialReopens() {
        var breaker = CircuitBreaker(settings: settings(threshold: 2, cooldown: 5, successes: 2))
        let start = ContinuousClock.now
        breaker.recordFailure(now: start)
        breaker.recordFailure(now: start)
        let trial = breaker.allowsRequest(now: start + .seconds(6))
        #expect(trial)
        breaker.recordSuccess()
        #expect(breaker.state == .halfOpen) // needs two successes
        breaker.recordFailure(now: start + .seconds(7))
        #expect(breaker.state == .open)
        let again = breaker.allowsRequest(now: start + .seconds(8))
        #expect(!again)
    }

    @Test func disabledNeverOpens() {
        var s = settings(threshold: 1)
        s.enabled = false
        var breaker = CircuitBreaker(settings: s)
        for _ in 0..<10 { breaker.recordFailure() }
        let allowed = breaker.allowsRequest()
        #expect(breaker.state == .closed && allowed)
    }
}
