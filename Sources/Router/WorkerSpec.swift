import Foundation

/// A worker as configured: where it listens, its role, and for a prefill
/// the port of its bootstrap server.
public struct WorkerSpec: Sendable, Hashable {
    /// Base URL without a trailing slash, e.g. `http://127.0.0.1:30001`.
    public let url: String
    public let role: WorkerRole
    /// The prefill's bootstrap port as given; `nil` is sent to instances as
    /// `bootstrap_port: null`, meaning "the prefill's default".
    public let bootstrapPort: Int?
    /// The URL's host: what decode instances connect to for the bootstrap handshake.
    public let host: String

    /// The port a prefill's bootstrap server listens on when none is given
    /// (SGLang's `--disaggregation-bootstrap-port` default).
    public static let defaultBootstrapPort = 8998

    /// Validates and normalises `url` (http only, host required, no path).
    public init(url: String, role: WorkerRole, bootstrapPort: Int? = nil) throws(RouterSetupError) {
        var text = url.trimmingCharacters(in: .whitespaces)
        while text.hasSuffix("/") { text.removeLast() }
        if !text.contains("://") { text = "http://" + text }
        guard let components = URLComponents(string: text), components.scheme == "http",
              let host = components.host, !host.isEmpty, components.port != nil,
              components.path.isEmpty, components.query == nil
        else {
            throw RouterSetupError("worker URL '\(url)' must look like http://HOST:PORT")
        }
        if let bootstrapPort, !(1...65535).contains(bootstrapPort) {
            throw RouterSetupError("bootstrap port \(bootstrapPort) of \(url) must be in 1...65535")
        }
        if bootstrapPort != nil && role != .prefill {
            throw RouterSetupError("only prefill workers have a bootstrap port (\(url) is \(role.rawValue))")
        }
        self.url = text
        self.role = role
        self.bootstrapPort = bootstrapPort
        // URLComponents keeps IPv6 brackets off; decode instances want the bare address.
        self.host = host
    }

    /// Where the prefill's bootstrap server answers `GET /health`; nil for other roles.
    public var bootstrapHealthURL: String? {
        guard role == .prefill else { return nil }
        let hostPart = host.contains(":") ? "[\(host)]" : host
        return "http://\(hostPart):\(bootstrapPort ?? Self.defaultBootstrapPort)/health"
    }
}
