/// When a worker's circuit opens and closes (sglang-router's `--cb-*` flags).
public struct CircuitBreakerSettings: Sendable {
    /// Consecutive failures (5xx or no connection; never a 4xx) that open the circuit.
    public var failureThreshold = 10
    /// Successful requests in the half-open state that close it again.
    public var successThreshold = 1
    /// Seconds an open circuit waits before letting trial requests through (half-open).
    public var cooldownSeconds = 30.0
    /// When false the circuit never opens.
    public var enabled = true

    public init() {}
}
