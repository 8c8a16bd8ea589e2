/// Why a call to a worker produced no usable response.
enum UpstreamFailure: Error, Sendable, CustomStringConvertible {
    /// No connection, or the connection broke before the response was complete.
    case unreachable(String)
    /// The worker did not answer in time.
    case timedOut(Double)

    var description: String {
        switch self {
        case .unreachable(let detail): "unreachable: \(detail)"
        case .timedOut(let seconds): "no complete answer within \(seconds)s"
        }
    }
}
