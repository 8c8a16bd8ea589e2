import Foundation

/// The bootstrap server's half of the shared key. A decode's lookups carry
/// a fresh nonce and the answers a tag over it, the request target, the
/// status and the body, so a forged `/route` cannot point a decode at
/// another listener and a forged `/drained` cannot free pages the prefill
/// may still write. A `PUT /route` registration carries a tag over its
/// time and body and is refused when it is wrong or older than `maxSkew`.
public enum BootstrapAuth {
    public static let nonceHeader = "X-PDServe-Nonce"
    public static let signatureHeader = "X-PDServe-Signature"
    /// Seconds a signed registration stays valid (clocks of one deployment agree this well).
    static let maxSkew = 300.0

    /// A bootstrap answer that is not signed with this side's key.
    struct Refused: Error, CustomStringConvertible { let description: String }

    static func replyTag(_ key: ChannelKey, nonce: [UInt8], target: String, status: Int, body: [UInt8]) -> [UInt8] {
        key.tag("bootstrap reply", nonce, Array(target.utf8), Array(String(status).utf8), body)
    }

    /// A GET to a bootstrap server whose answer must carry a valid tag when there is a key.
    static func get(host: String, port: Int, path: String, timeout: Double, key: ChannelKey?) throws -> SimpleHTTP.Reply {
        guard let key else { return try SimpleHTTP.get(host: host, port: port, path: path, timeout: timeout) }
        let nonce = ChannelKey.nonce()
        let reply = try SimpleHTTP.get(host: host, port: port, path: path, timeout: timeout, headers: [nonceHeader: Hex.text(nonce)])
        guard let text = reply.headers[signatureHeader.lowercased()] else {
            throw Refused(description: "bootstrap server \(host):\(port) did not sign its answer to \(path): \(TransferHandshake.missingKey)")
        }
        guard let tag = Hex.bytes(text), ChannelKey.same(tag, replyTag(key, nonce: nonce, target: path, status: reply.status, body: Array(reply.body))) else {
            throw Refused(description: "bootstrap server \(host):\(port) signed its answer to \(path) with another key: \(TransferHandshake.missingKey)")
        }
        return reply
    }

    /// The signature header of a `PUT /route` body made at `now` (seconds since 1970).
    public static func registrationSignature(_ key: ChannelKey, body: [UInt8], now: Double = Date().timeIntervalSince1970) -> String {
        let time = String(Int(now))
        return time + "." + Hex.text(key.tag("bootstrap registration", Array(time.utf8), body))
    }

    /// Why a registration is refused, or nil.
    static func refusal(ofRegistration signature: String?, body: [UInt8], key: ChannelKey, now: Double = Date().timeIntervalSince1970) -> String? {
        guard let signature else { return "PUT /route needs an \(signatureHeader) header: this bootstrap server has an auth key" }
        let parts = signature.split(separator: ".", maxSplits: 1)
        guard parts.count == 2, let time = Double(parts[0]), let tag = Hex.bytes(parts[1]) else {
            return "\(signatureHeader) must be <unix seconds>.<hex HMAC-SHA256>"
        }
        guard abs(now - time) <= maxSkew else { return "\(signatureHeader) is \(Int(now - time)) s old (at most \(Int(maxSkew)) s)" }
        guard key.verify(tag, "bootstrap registration", Array(parts[0].utf8), body) else {
            return "\(signatureHeader) does not match the body under this server's auth key"
        }
        return nil
    }
}
