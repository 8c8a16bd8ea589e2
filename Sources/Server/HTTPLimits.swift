import Hummingbird
import HummingbirdCore
import NIOCore
import NIOHTTPTypes

/// Bounds on what HTTP clients may hold: open connections
/// (`--max-connections`), a connection idle or half-way through its request
/// head (`--http-idle-timeout`), and a request body that stops coming
/// (`--http-body-timeout`). Without them 19,000 half-sent requests were all
/// held for a minute and more, and the server stopped accepting — or
/// crashed — at the file-descriptor limit.
public struct HTTPLimits: Sendable {
    public var maxConnections = 4096
    /// Hummingbird's idle timer: between requests and while a request is
    /// being read (never while a read request is being answered, however long).
    public var idleTimeoutSeconds = 60.0
    /// Below the idle timeout, so a stalled body is answered 408 before the connection is dropped.
    public var bodyTimeoutSeconds = 30.0

    public init() {}

    /// Hummingbird's HTTP/1 server with these bounds; `extra` handlers follow the limit's.
    public func server(counter: ConnectionCounter, extra: @escaping @Sendable () -> [any RemovableChannelHandler] = { [] })
        -> HTTPServerBuilder {
        let limit = maxConnections
        return .http1(configuration: .init(
            additionalChannelHandlers: [ConnectionLimitHandler(counter: counter, limit: limit), ProtocolErrorResponder()] + extra(),
            idleTimeout: .milliseconds(Int64(idleTimeoutSeconds * 1000))
        ))
    }

    /// The whole body of `request`, refused as too large past `limit` bytes
    /// and as timed out (408) when it has not all come after `bodyTimeoutSeconds`.
    /// A body sent with a `Content-Encoding` other than identity is a 415:
    /// nothing here decompresses, and reading gzip bytes as JSON would blame the client's JSON.
    public func body(of request: Request, limit: Int) async throws(APIError) -> ByteBuffer {
        if let encoding = request.headers[.contentEncoding], encoding.lowercased() != "identity" {
            throw APIError(.unsupportedMediaType, type: "invalid_request_error",
                           "Content-Encoding '\(encoding)' is not supported; send the body uncompressed.")
        }
        let seconds = bodyTimeoutSeconds
        do {
            return try await TimeLimit.run(seconds: seconds) { try await request.body.collect(upTo: limit) }
        } catch is TimeLimit.Exceeded {
            throw APIError(.requestTimeout, type: "request_timeout", "The request body did not arrive in full within \(seconds) s.")
        } catch {
            throw APIError.bodyNotRead(error, limit: limit)
        }
    }
}

/// One per connection: counts it, and past the limit answers its first
/// request with a 503 (`Retry-After`) and closes it — a clean refusal
/// instead of file-descriptor exhaustion. A refused connection that sends
/// nothing is closed after `refusalGrace`, so idle ones past the limit do
/// not hold descriptors until the idle timeout. A health probe on such a
/// connection is answered all the same.
public final class ConnectionLimitHandler: ChannelDuplexHandler, RemovableChannelHandler, @unchecked Sendable {
    public typealias InboundIn = HTTPRequestPart
    public typealias OutboundIn = HTTPResponsePart
    public typealias OutboundOut = HTTPResponsePart

    private let counter: ConnectionCounter
    private let limit: Int
    private var counted = false
    private var refused = false
    /// A refused connection's request is a health probe, let through.
    private var probing = false
    private var closer: Scheduled<Void>?
    static let refusalGrace = TimeAmount.seconds(1)

    public init(counter: ConnectionCounter, limit: Int) {
        self.counter = counter
        self.limit = limit
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        counted = true
        refused = !counter.open(limit: limit)
        if refused {
            let channel = context.channel
            closer = context.eventLoop.scheduleTask(in: Self.refusalGrace) { channel.close(promise: nil) }
        }
    }

    public func handlerRemoved(context: ChannelHandlerContext) { release() }

    public func channelInactive(context: ChannelHandlerContext) {
        release()
        context.fireChannelInactive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard refused else { return context.fireChannelRead(data) }
        let part = unwrapInboundIn(data)
        // Probes are answered past the cap: an orchestrator must not restart a
        // healthy instance because clients hold every connection.
        if case .head(let head) = part { probing = FrontDoor.probePaths.contains(Self.path(head.path)) }
        if probing { return context.fireChannelRead(data) }
        guard case .head = part else { return }
        var error = APIError(.serviceUnavailable, type: "too_many_connections",
                             "The server holds its limit of \(limit) connections; retry shortly.")
        error.retryAfterSeconds = 1
        ClosingAnswer.send(error, on: context)
    }

    private static func path(_ target: String?) -> String {
        String((target ?? "").prefix { $0 != "?" })
    }

    private func release() {
        closer?.cancel()
        closer = nil
        guard counted else { return }
        counted = false
        counter.closed()
    }
}
