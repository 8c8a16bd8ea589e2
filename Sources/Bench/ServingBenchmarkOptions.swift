/// How a serving benchmark run sends its requests.
public struct ServingBenchmarkOptions: Sendable {
    /// At most this many requests in flight (`--max-concurrency`); nil is unbounded.
    public var maxConcurrency: Int?
    /// Requests sent (all at once) before the measured run, not counted.
    public var warmupRequests = 1
    /// Seconds between progress lines; `.infinity` prints none until the last.
    public var progressInterval = 5.0
    public var objectives = GoodputObjectives()

    public init() {}
}
