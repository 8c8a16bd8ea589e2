/// One class of requests in a workload: a name, how prompts are drawn, and
/// how often they arrive. A plain run has one class; a mixed run several,
/// each with its own Poisson arrivals and its own metrics.
public struct WorkloadClass: Sendable {
    public var name: String
    /// Arrivals per second (Poisson); `.infinity` sends every request at once.
    public var rate: Double
    /// Prompt length in tokens (random prompts).
    public var inputLength: Int
    /// Tokens to generate per request.
    public var outputLength: Int
    /// Random lengths are drawn from [ratio·len, len] (sglang's `--random-range-ratio`).
    public var rangeRatio: Double

    public init(name: String, rate: Double, inputLength: Int, outputLength: Int, rangeRatio: Double = 1) {
        self.name = name
        self.rate = rate
        self.inputLength = inputLength
        self.outputLength = outputLength
        self.rangeRatio = rangeRatio
    }
}
