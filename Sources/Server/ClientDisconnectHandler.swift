import NIOCore

/// One per connection: closes the connection as soon as the client shuts
/// down its side, and then aborts the requests still running on it
/// (counting connections is `ConnectionLimitHandler`'s job).
/// Hummingbird's channels allow half-closure, so without the close a client
/// that hangs up during a long non-streamed generation would go unnoticed
/// until the answer is written.
final class ClientDisconnectHandler: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = NIOAny

    let watch: DisconnectWatch
    private var ended = false

    init(counter: ConnectionCounter) {
        watch = DisconnectWatch(counter: counter)
    }

    func channelInactive(context: ChannelHandlerContext) {
        connectionEnded()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        connectionEnded()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// Runs once, on the channel's event loop.
    private func connectionEnded() {
        guard !ended else { return }
        ended = true
        watch.connectionClosed()
    }
}
