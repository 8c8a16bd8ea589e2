import Foundation

/// A decode's connection to one prefill instance (one per bootstrap
/// address): a reader thread lands its frames, a heartbeat thread watches
/// its bootstrap server, and control frames go out on `sendQueue` so a
/// stalled prefill never blocks the engine or another prefill.
final class PrefillLink: @unchecked Sendable {
    let key: String
    let bootstrapHost: String
    let bootstrapPort: Int
    let connection: FrameConnection
    let lander: any KVPageLander
    /// The prefill's number for this connection (see `TransferMessage.Hello.session`).
    let session: UInt64
    let sendQueue: DispatchQueue
    /// Guarded by the side-car's lock.
    var alive = true
    var rooms: [UInt64: DecodeRoom] = [:]

    init(key: String, host: String, port: Int, connection: FrameConnection, lander: any KVPageLander, session: UInt64) {
        self.session = session
        self.key = key
        bootstrapHost = host
        bootstrapPort = port
        self.connection = connection
        self.lander = lander
        sendQueue = DispatchQueue(label: "pdserve-kv-control-\(key)")
    }
}
