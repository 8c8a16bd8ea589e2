import NIOCore

/// Closes the connection as soon as the client shuts down its side.
/// Hummingbird's channels allow half-closure, so without this a client that
/// hangs up during a long non-streamed generation goes unnoticed until the
/// answer is written; closing lets `channel.closeFuture` abort the request.
final class ClientDisconnectHandler: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
