/// Runs work with a time limit; past it the work is cancelled and
/// `UpstreamFailure.timedOut` thrown. AsyncHTTPClient's deadline only covers
/// the response head, so reading a body needs this.
enum TimeLimit {
    static func run<T: Sendable>(seconds: Double, _ work: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await work() }
            group.addTask {
                try await Task.sleep(for: .seconds(seconds))
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else { throw UpstreamFailure.timedOut(seconds) }
            return value
        }
    }
}
