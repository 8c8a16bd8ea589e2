/// `--disaggregation-transfer-backend`: how page bytes move.
public enum TransferBackendKind: String, Sendable, CaseIterable {
    /// Over the transfer TCP connection, written straight into the destination pages.
    case tcp
    /// Decode's KV pool lives in shared memory; the prefill copies pages into it (same host).
    case shm
    /// Moves nothing and succeeds at once: warm-up and plumbing tests; outputs are meaningless.
    case fake

    /// Parses the flag; names SGLang knows but this build lacks get a clear refusal.
    public static func parse(_ name: String) throws -> TransferBackendKind {
        if let kind = TransferBackendKind(rawValue: name.lowercased()) { return kind }
        if ["nixl", "mooncake", "ascend"].contains(name.lowercased()) {
            throw ConfigurationError("--disaggregation-transfer-backend \(name): this backend is not built yet; use tcp, shm or fake")
        }
        throw ConfigurationError("--disaggregation-transfer-backend \(name): unknown backend; use tcp, shm or fake")
    }
}
