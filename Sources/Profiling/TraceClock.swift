import Foundation

/// The time base of every trace: microseconds on CLOCK_MONOTONIC, which all
/// processes of one host share, so a prefill's and a decode's traces line
/// up as recorded. `baseTimeNanoseconds` (Unix time of its zero) lets
/// traces from different hosts be aligned by wall clock.
public enum TraceClock {
    public static func now() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) * 1e6 + Double(spec.tv_nsec) / 1e3
    }

    /// Unix time, in nanoseconds, at which the monotonic clock read zero.
    public static func baseTimeNanoseconds() -> Int64 {
        let monotonic = now()
        let wall = Date().timeIntervalSince1970 * 1e6
        return Int64((wall - monotonic) * 1e3)
    }

    /// The trace time `secondsAgo` seconds before now.
    public static func before(secondsAgo: Double) -> Double { now() - secondsAgo * 1e6 }

    /// A `ContinuousClock` instant on the trace's time base.
    public static func time(of instant: ContinuousClock.Instant) -> Double {
        let ago = ContinuousClock.now - instant
        return before(secondsAgo: Double(ago.components.seconds) + Double(ago.components.attoseconds) * 1e-18)
    }
}
