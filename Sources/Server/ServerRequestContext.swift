import Hummingbird
import NIOCore

/// Hummingbird's basic context plus the connection's channel, so handlers
/// can abort generation as soon as the client goes away.
public struct ServerRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}
