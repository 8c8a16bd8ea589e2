/// The tags of one authenticated transfer connection. Every frame's header
/// and buffered payload (room, page indexes, tokens, statuses) is followed
/// by a tag over a per-direction sequence number and those bytes, so a
/// frame cannot be forged, dropped, replayed or bound to another room. A
/// kvPages frame's raw page bytes are not tagged: hashing them would cost
/// more than moving them; where they may land is what the tag protects.
final class FrameSeal: @unchecked Sendable {
    enum Side { case prefill, decode }

    static let tagSize = 32
    private let key: ChannelKey
    private let sending: String, receiving: String
    /// Guarded by the connection's send lock.
    private var sent: UInt64 = 0
    /// Only the connection's one reader touches it.
    private var received: UInt64 = 0

    init(key: ChannelKey, side: Side) {
        self.key = key
        (sending, receiving) = side == .prefill ? ("prefill to decode", "decode to prefill") : ("decode to prefill", "prefill to decode")
    }

    /// The next outgoing frame's tag (call under the send lock, in send order).
    func tagNext(_ frame: [UInt8]) -> [UInt8] {
        defer { sent += 1 }
        return key.tag(sending, Self.counter(sent), frame)
    }

    /// Checks the next incoming frame's tag.
    func checkNext(_ frame: [UInt8], tag: [UInt8]) throws(TransferProtocolError) {
        defer { received += 1 }
        guard key.verify(tag, receiving, Self.counter(received), frame) else {
            throw TransferProtocolError("frame \(received) fails its auth tag: forged, replayed or damaged")
        }
    }

    private static func counter(_ n: UInt64) -> [UInt8] { withUnsafeBytes(of: n.littleEndian) { Array($0) } }
}
