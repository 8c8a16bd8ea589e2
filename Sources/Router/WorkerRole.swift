/// What a worker does for the router: a unified instance in plain
/// load-balancing mode, or one half of a prefill/decode pair.
public enum WorkerRole: String, Sendable, CaseIterable, Codable {
    /// A unified instance (`--disaggregation-mode null`), used without `--pd-disaggregation`.
    case regular
    /// A prefill instance: gets the request with bootstrap fields and sends the KV cache on.
    case prefill
    /// A decode instance: receives the KV cache and streams the tokens to the client.
    case decode
}
