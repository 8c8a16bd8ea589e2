/// A prefill's connection from one decode instance: the control frames of
/// every room bound to that decode, and the backend's writer into its pool.
/// All sends happen on the link's serial transfer queue (`shard`).
final class DecodeLink: @unchecked Sendable {
    let id: Int
    /// Random, so a decode never mistakes a restarted prefill's session for an old one.
    let session = UInt64.random(in: 1...UInt64.max)
    let connection: FrameConnection
    /// Set once the hello exchange succeeded.
    var writer: (any KVPageWriter)?
    /// Guarded by the side-car's lock.
    var alive = true

    init(id: Int, connection: FrameConnection) {
        self.id = id
        self.connection = connection
    }

    var shard: Int { id }
}
