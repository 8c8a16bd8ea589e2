import Foundation

/// Retries of a failed request on other workers (sglang-router's `--retry-*` flags).
public struct RetrySettings: Sendable {
    /// Attempts in all, the first included: 1 means no retry (sglang-router's meaning of `--retry-max-retries`).
    public var maxAttempts = 5
    public var initialBackoffMilliseconds = 50.0
    public var maxBackoffMilliseconds = 30_000.0
    public var backoffMultiplier = 1.5
    /// Fraction of the delay added or removed at random, so retries of many requests spread out.
    public var jitterFactor = 0.2

    public init() {}

    /// The pause before attempt `attempt` (2 for the first retry), in seconds.
    public func backoff(beforeAttempt attempt: Int) -> Double {
        let exponent = Double(max(0, attempt - 2))
        let base = min(maxBackoffMilliseconds, initialBackoffMilliseconds * pow(backoffMultiplier, exponent))
        let jitter = jitterFactor > 0 ? Double.random(in: -jitterFactor...jitterFactor) : 0
        return max(0, base * (1 + jitter)) / 1000
    }
}
