/// How a transfer connection opens, both sides in one place:
///
/// 1. prefill → decode `challenge(nonce_p)`
/// 2. decode → prefill `hello(nonce_d, proof_d)`, proof_d = tag(nonce_p, hello)
/// 3. prefill → decode `hello(session, proof_p)`, proof_p = tag(nonce_p, nonce_d, hello)
///
/// With a shared `ChannelKey` each side checks the other's proof before it
/// trusts anything the other says: the prefill makes no writer into a pool
/// whose owner did not prove the key, the decode lands nothing from a
/// listener that did not. After step 3 every frame carries a tag under a
/// key derived from both nonces (`FrameSeal`), so frames cannot be forged,
/// replayed or moved to another room on the way. Without a key proofs are
/// empty and a side that has one refuses a side that does not, naming the flag.
enum TransferHandshake {
    /// The most a handshake frame may carry (a hello with the largest backend
    /// descriptor is far smaller): what a peer that proved nothing can make the other side read.
    static let maxFrameBytes = 1 << 20

    static let missingKey = "set the same --disaggregation-auth-key (or \(ChannelKey.environmentName)) on every prefill and decode instance"

    // MARK: prefill side

    /// Step 1; returns the nonce the decode's proof must cover.
    static func challenge(_ connection: FrameConnection) throws -> [UInt8] {
        let nonce = ChannelKey.nonce()
        try connection.send(.challenge(nonce: nonce))
        return nonce
    }

    /// Checks step 2: why the decode is refused, or nil.
    static func refusal(of hello: TransferMessage.Hello, challenge: [UInt8], key: ChannelKey?) -> String? {
        guard hello.nonce.count == 16 else { return "the decode's hello carries no 16-byte nonce" }
        switch (key, hello.proof.isEmpty) {
        case (nil, true): return nil
        case (nil, false): return "the decode sent an auth proof but this prefill instance has no key: \(missingKey)"
        case (_?, true): return "this prefill instance requires an auth key and the decode sent no proof: \(missingKey)"
        case (let key?, false):
            return key.verify(hello.proof, "decode hello", challenge, unproven(hello)) ? nil : "the decode's auth proof is wrong: \(missingKey)"
        }
    }

    /// Step 3's hello, with its proof.
    static func prefillHello(_ hello: TransferMessage.Hello, challenge: [UInt8], decodeNonce: [UInt8], key: ChannelKey?) -> TransferMessage.Hello {
        var hello = hello
        hello.proof = key?.tag("prefill hello", challenge, decodeNonce, unproven(hello)) ?? []
        return hello
    }

    // MARK: decode side

    /// Reads step 1.
    static func readChallenge(_ connection: FrameConnection) throws -> [UInt8] {
        let (header, payload) = try connection.readFrame(maxPayload: maxFrameBytes)
        switch try TransferCodec.decode(header, payload: payload) {
        case .challenge(let nonce) where nonce.count == 16: return nonce
        case .error(let message): throw TransferProtocolError("refused the connection: \(message)")
        default: throw TransferProtocolError("did not open with a challenge (an older PDServe, or not a prefill's transfer port)")
        }
    }

    /// Step 2's hello, with a fresh nonce and its proof.
    static func decodeHello(_ hello: TransferMessage.Hello, challenge: [UInt8], key: ChannelKey?) -> TransferMessage.Hello {
        var hello = hello
        hello.nonce = ChannelKey.nonce()
        hello.proof = key?.tag("decode hello", challenge, unproven(hello)) ?? []
        return hello
    }

    /// Checks step 3: why the prefill is refused, or nil.
    static func refusal(ofPrefill hello: TransferMessage.Hello, challenge: [UInt8], decodeNonce: [UInt8], key: ChannelKey?) -> String? {
        switch (key, hello.proof.isEmpty) {
        case (nil, true): return nil
        case (nil, false): return "the prefill sent an auth proof but this decode instance has no key: \(missingKey)"
        case (_?, true): return "this decode instance requires an auth key and the prefill sent no proof: \(missingKey)"
        case (let key?, false):
            return key.verify(hello.proof, "prefill hello", challenge, decodeNonce, unproven(hello)) ? nil : "the prefill's auth proof is wrong: \(missingKey)"
        }
    }

    // MARK: both

    /// From now on, tags every frame each way (nothing without a key).
    static func seal(_ connection: FrameConnection, key: ChannelKey?, challenge: [UInt8], decodeNonce: [UInt8], side: FrameSeal.Side) {
        guard let key else { return }
        connection.seal = FrameSeal(key: key.sessionKey(prefillNonce: challenge, decodeNonce: decodeNonce), side: side)
    }

    /// The hello's bytes as proved: everything but the proof itself.
    private static func unproven(_ hello: TransferMessage.Hello) -> [UInt8] {
        var hello = hello
        hello.proof = []
        return TransferCodec.encode(.hello(hello))
    }
}
