/// Counts of a run in progress, for the periodic progress line.
actor ServingProgress {
    private(set) var sent = 0
    private(set) var done = 0
    private(set) var failed = 0
    private(set) var firstError: String?

    func markSent() { sent += 1 }

    func record(_ outcome: ServingRequestOutcome) {
        done += 1
        if !outcome.success {
            failed += 1
            if firstError == nil { firstError = outcome.error }
        }
    }

    /// `sent 40/120, done 35 (0 failed), in flight 5`.
    func line(total: Int) -> String {
        var text = "sent \(sent)/\(total), done \(done) (\(failed) failed), in flight \(sent - done)"
        if let firstError { text += "; first error: \(firstError.prefix(160))" }
        return text
    }
}
