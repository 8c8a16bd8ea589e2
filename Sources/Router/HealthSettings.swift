/// How workers are polled (sglang-router's `--health-*` flags).
public struct HealthSettings: Sendable {
    /// Seconds between checks of a ready worker.
    public var intervalSeconds = 10.0
    /// Seconds between checks of a worker that is not ready yet (starting, or failed),
    /// so a worker that comes (back) up is used soon.
    public var notReadyIntervalSeconds = 1.0
    /// Seconds one check may take.
    public var timeoutSeconds = 5.0
    /// Consecutive failed checks that take a ready worker out of rotation.
    public var failureThreshold = 3
    /// Consecutive good checks that put a worker (back) in rotation.
    public var successThreshold = 1
    /// The path polled on each worker.
    public var endpoint = "/health"
    /// When true no check is made: every worker counts as ready.
    public var disabled = false
    /// Seconds start-up waits for every configured worker to be ready before the
    /// router reports itself ready anyway (workers not ready are skipped until they are).
    public var startupTimeoutSeconds = 1800.0

    public init() {}
}
