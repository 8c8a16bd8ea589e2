import Foundation

/// Sums of two quantities over the last `seconds` whole seconds, kept in one
/// bucket per second, so a gauge like "tokens per second" reads the same
/// whoever scrapes and however often.
final class RateWindow: @unchecked Sendable {
    private let lock = NSLock()
    private let seconds: Int
    private let origin = ContinuousClock.now
    /// Bucket `i` holds second `stamps[i]`; a stale stamp means the bucket is empty.
    private var stamps: [Int]
    private var sums: [(Double, Double)]

    init(seconds: Int = 10) {
        self.seconds = seconds
        stamps = Array(repeating: -1, count: seconds)
        sums = Array(repeating: (0, 0), count: seconds)
    }

    private func secondNow() -> Int {
        Int((ContinuousClock.now - origin).components.seconds)
    }

    func add(_ a: Double, _ b: Double = 0) {
        let now = secondNow()
        lock.withLock {
            let slot = now % seconds
            if stamps[slot] != now { stamps[slot] = now; sums[slot] = (0, 0) }
            sums[slot].0 += a
            sums[slot].1 += b
        }
    }

    /// The totals of the window's seconds (the current, partial second
    /// included) and the time they cover: shorter than `seconds` while the
    /// process is younger than that, and never under one second, so a rate
    /// read just after start is not a burst divided by almost nothing.
    func totals() -> (a: Double, b: Double, span: Double) {
        // One clock reading for both the current second and the age.
        let age = (ContinuousClock.now - origin).inSeconds
        let now = Int(age)
        return lock.withLock {
            var a = 0.0, b = 0.0
            for (slot, stamp) in stamps.enumerated() where stamp > now - seconds {
                a += sums[slot].0
                b += sums[slot].1
            }
            // The partial current second counts, so the span runs to now.
            return (a, b, max(1, min(Double(seconds - 1) + age.truncatingRemainder(dividingBy: 1), age)))
        }
    }
}
