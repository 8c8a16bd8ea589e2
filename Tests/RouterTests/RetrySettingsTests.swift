import Testing
@testable import Router

/// Backoff grows by the multiplier, stays under the cap, and jitters within its factor.
@Suite struct RetrySettingsTests {
    @Test func backoffGrowsAndIsCapped() {
        var retry = RetrySettings()
        retry.initialBackoffMilliseconds = 100
        retry.backoffMultiplier = 2
        retry.maxBackoffMilliseconds = 300
        retry.jitterFactor = 0
        #expect(retry.backoff(beforeAttempt: 2) == 0.1)
        #expect(retry.backoff(beforeAttempt: 3) == 0.2)
        #expect(retry.backoff(beforeAttempt: 4) == 0.3)
        #expect(retry.backoff(beforeAttempt: 9) == 0.3)
    }

    @Test func jitterStaysWithinItsFactor() {
        var retry = RetrySettings()
        retry.initialBackoffMilliseconds = 1000
        retry.jitterFactor = 0.2
        for _ in 0..<100 {
            let pause = retry.backoff(beforeAttempt: 2)
            #expect(pause >= 0.8 && pause <= 1.2)
        }
    }
}
