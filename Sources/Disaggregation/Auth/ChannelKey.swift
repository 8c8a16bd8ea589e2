import Crypto
import Foundation

/// The secret every instance of one PD deployment shares
/// (`--disaggregation-auth-key`, `PDSERVE_DISAGGREGATION_AUTH_KEY`). It
/// never crosses a wire: peers prove they hold it with HMAC-SHA256 tags over
/// fresh nonces, so a listener that does not know it cannot pose as a
/// prefill, and a client that does not know it cannot register a rank or
/// pose as a decode. SGLang has no such key.
public struct ChannelKey: Sendable {
    private let key: SymmetricKey

    /// Shortest secret accepted: 16 bytes, so it cannot be guessed offline from one tag.
    public static let minimumLength = 16
    public static let environmentName = "PDSERVE_DISAGGREGATION_AUTH_KEY"

    public init(secret: String) throws {
        let bytes = Array(secret.utf8)
        guard bytes.count >= Self.minimumLength else {
            throw ConfigurationError("--disaggregation-auth-key must be at least \(Self.minimumLength) bytes (it has \(bytes.count))")
        }
        key = SymmetricKey(data: bytes)
    }

    private init(key: SymmetricKey) { self.key = key }

    /// A random secret (hex), for `pdserve up` to hand its own processes.
    public static func randomSecret() -> String {
        SymmetricKey(size: .bits256).withUnsafeBytes { $0.map { String(format: "%02x", $0) }.joined() }
    }

    /// 16 random bytes that make one exchange's tags unrepeatable.
    public static func nonce() -> [UInt8] { (0..<16).map { _ in UInt8.random(in: 0...255) } }

    /// The tag of `parts` under `purpose`. Each part is length-prefixed, so
    /// no two different lists of parts read as the same bytes.
    public func tag(_ purpose: String, _ parts: [UInt8]...) -> [UInt8] { tag(purpose, parts) }

    /// Whether `tag` is `parts`' tag under `purpose`, compared in constant time.
    public func verify(_ tag: [UInt8], _ purpose: String, _ parts: [UInt8]...) -> Bool {
        Self.same(tag, self.tag(purpose, parts))
    }

    /// Whether two tags are equal, in time that does not depend on where they differ.
    static func same(_ tag: [UInt8], _ wanted: [UInt8]) -> Bool {
        guard tag.count == wanted.count else { return false }
        return zip(tag, wanted).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    private func tag(_ purpose: String, _ parts: [[UInt8]]) -> [UInt8] {
        var mac = HMAC<SHA256>(key: key)
        for part in [Array(purpose.utf8)] + parts {
            withUnsafeBytes(of: UInt64(part.count).littleEndian) { mac.update(data: $0) }
            mac.update(data: part)
        }
        return Array(mac.finalize())
    }

    /// A key for one connection, derived from both sides' nonces.
    func sessionKey(prefillNonce: [UInt8], decodeNonce: [UInt8]) -> ChannelKey {
        ChannelKey(key: SymmetricKey(data: tag("transfer session", prefillNonce, decodeNonce)))
    }
}

/// Hex text of bytes, and back (HTTP headers carry tags and nonces as hex).
enum Hex {
    static func text(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    static func bytes(_ text: some StringProtocol) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(digits.count / 2)
        var i = 0
        while i < digits.count {
            guard let high = value(digits[i]), let low = value(digits[i + 1]) else { return nil }
            out.append(high << 4 | low)
            i += 2
        }
        return out
    }

    private static func value(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
