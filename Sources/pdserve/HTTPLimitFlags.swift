import ArgumentParser
import Server

/// Connection bounds of an HTTP server (instances and the router alike).
struct HTTPLimitFlags: ParsableArguments {
    @Option(name: .customLong("max-connections"), help: "Open HTTP connections held at most; a connection beyond it gets 503 with Retry-After and is closed.")
    var maxConnections = HTTPLimits().maxConnections
    @Option(name: .customLong("http-idle-timeout"), help: "Seconds a connection may sit idle, or in the middle of sending a request, before it is closed (a request being answered is never cut).")
    var idleTimeout = HTTPLimits().idleTimeoutSeconds
    @Option(name: .customLong("http-body-timeout"), help: "Seconds a request body may take to arrive in full; then 408 (keep it below --http-idle-timeout).")
    var bodyTimeout = HTTPLimits().bodyTimeoutSeconds

    func validate() throws {
        guard maxConnections >= 1 else { throw ValidationError("--max-connections must be >= 1") }
        guard idleTimeout > 0, bodyTimeout > 0 else { throw ValidationError("--http-idle-timeout and --http-body-timeout must be > 0") }
    }

    var limits: HTTPLimits {
        var limits = HTTPLimits()
        limits.maxConnections = maxConnections
        limits.idleTimeoutSeconds = idleTimeout
        limits.bodyTimeoutSeconds = bodyTimeout
        return limits
    }
}
