/// Bounds that keep a hostile or buggy template from exhausting memory, time or stack.
/// The defaults sit far above what real chat templates need.
public struct RenderLimits: Sendable {
    /// Maximum rendered size in UTF-8 bytes.
    public var maxOutputBytes: Int
    /// Maximum loop iterations over the whole render (all loops together).
    public var maxLoopIterations: Int
    /// Maximum nesting of macro calls.
    public var maxCallDepth: Int

    /// Creates limits.
    public init(maxOutputBytes: Int = 64 << 20, maxLoopIterations: Int = 10_000_000, maxCallDepth: Int = 100) {
        self.maxOutputBytes = maxOutputBytes
        self.maxLoopIterations = maxLoopIterations
        self.maxCallDepth = maxCallDepth
    }
}
