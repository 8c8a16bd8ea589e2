import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Runs work with a time limit; past it the work is cancelled and
/// `TimeLimit.Exceeded` thrown. The deadline is an event-loop timer, which
/// is freed the moment it is cancelled. (A racing `Task.sleep` child is not:
/// cancelled, it still holds its task until the original deadline, so every
/// request with a 30-minute limit kept about a kilobyte for 30 minutes — the
/// router grew 400 MB in a 30-minute soak.)
public enum TimeLimit {
    public struct Exceeded: Error, Sendable {
        public let seconds: Double
    }

    public static func run<T: Sendable>(seconds: Double, _ work: @escaping @Sendable () async throws -> T) async throws -> T {
        let task = Task { try await work() }
        let expired = NIOLockedValueBox(false)
        let timer = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: .nanoseconds(Int64(min(seconds, 1e9) * 1e9))) {
            expired.withLockedValue { $0 = true }
            task.cancel()
        }
        defer { timer.cancel() }
        do {
            return try await withTaskCancellationHandler { try await task.value } onCancel: { task.cancel() }
        } catch {
            if expired.withLockedValue({ $0 }) { throw Exceeded(seconds: seconds) }
            throw error
        }
    }
}
