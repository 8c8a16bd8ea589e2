import Dispatch
import Foundation

/// Seconds on a clock that never jumps (timeouts must not move with the
/// wall clock). Side-cars take one so tests can drive time by hand.
public protocol MonotonicClock: Sendable {
    func now() -> Double
}

/// The system's monotonic clock (CLOCK_MONOTONIC through Dispatch).
public struct SystemMonotonicClock: MonotonicClock {
    public init() {}
    public func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
}

/// A timeout as messages show it: "300s", "2.5s".
func secondsText(_ value: Double) -> String { value == value.rounded() ? "\(Int(value))s" : "\(value)s" }

/// A clock tests move forward themselves.
public final class ManualClock: MonotonicClock, @unchecked Sendable {
    private let lock = NSLock()
    private var seconds: Double

    public init(start: Double = 1000) { seconds = start }
    public func now() -> Double { lock.withLock { seconds } }
    public func advance(_ delta: Double) { lock.withLock { seconds += delta } }
}
