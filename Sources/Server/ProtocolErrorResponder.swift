import Hummingbird
import HummingbirdCore
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// A request the HTTP parser could not read (bad request line, header or
/// chunk syntax) gets a JSON 400 saying why, like every other error, rather
/// than Hummingbird's empty one; then the connection closes. Only between
/// answers: while one is being written the error goes on to Hummingbird.
public final class ProtocolErrorResponder: ChannelDuplexHandler, RemovableChannelHandler, @unchecked Sendable {
    public typealias InboundIn = HTTPRequestPart
    public typealias InboundOut = HTTPRequestPart
    public typealias OutboundIn = HTTPResponsePart
    public typealias OutboundOut = HTTPResponsePart

    /// Request heads read minus responses finished.
    private var unanswered = 0
    private var answered = false

    public init() {}

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) { unanswered += 1 }
        context.fireChannelRead(data)
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { unanswered -= 1 }
        context.write(data, promise: promise)
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parse = error as? HTTPParserError, unanswered == 0, !answered else { return context.fireErrorCaught(error) }
        answered = true
        ClosingAnswer.send(APIError.invalid("The request is not valid HTTP/1.1 (\(parse)).", param: nil), on: context)
    }
}

/// Writes an error as a JSON response on a connection that then closes.
enum ClosingAnswer {
    static func send(_ error: APIError, on context: ChannelHandlerContext) {
        let body = ByteBuffer(bytes: JSON.encode(error.body))
        var fields: HTTPFields = [.contentType: "application/json", .contentLength: String(body.readableBytes), .connection: "close"]
        if let seconds = error.retryAfterSeconds { fields[.retryAfter] = String(seconds) }
        context.write(NIOAny(HTTPResponsePart.head(HTTPResponse(status: error.status, headerFields: fields))), promise: nil)
        context.write(NIOAny(HTTPResponsePart.body(body)), promise: nil)
        let channel = context.channel
        context.writeAndFlush(NIOAny(HTTPResponsePart.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}
