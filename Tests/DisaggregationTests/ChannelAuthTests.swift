@testable import Disaggregation
import Engine
import EngineTesting
import Foundation
import Testing

/// The shared PD key: a keyed pair decodes like transformers over every
/// backend (every frame tagged); any pair whose keys differ, or where one
/// side has none, refuses to pair with a message naming the flag and
/// leaves both pools whole. In the room suite, which runs one harness at a time.
extension RoomLifecycleTests {
    typealias Keys = ChannelAuthTests.Keys

    @Test(arguments: RoomLifecycleTests.backends)
    func aKeyedPairDecodesLikeTransformers(backend: String) async throws {
        let key = ChannelAuthTests.key
        try await withHarness(backend: backend, prefillKey: key, decodeKey: key) { pd in
            for (index, prompt) in [RoomLifecycleTests.longPrompt, 3].enumerated() {
                let pair = try pd.submit(prompt: prompt, room: room() + UInt64(index))
                settle(pd, [pair.prefillID, pair.decodeID])
                #expect(pd.reference.mismatch(prompt: prompt, output: pd.tokens(pair.decodeID)) == nil)
            }
        }
    }

    @Test(arguments: ["tcp", "shm"], Keys.allCases)
    func mismatchedKeysNeverPair(backend: String, keys: Keys) async throws {
        let (key, other) = (ChannelAuthTests.key, ChannelAuthTests.other)
        let (prefillKey, decodeKey): (ChannelKey?, ChannelKey?) = switch keys {
        case .prefillOnly: (key, nil)
        case .decodeOnly: (nil, key)
        case .different: (key, other)
        }
        try await withHarness(backend: backend, prefillKey: prefillKey, decodeKey: decodeKey) { pd in
            let pair = try pd.submit(prompt: 3, room: room())
            #expect(pd.pump { pd.finish(pair.decodeID) != nil })
            #expect(pd.finish(pair.decodeID)?.failureKind == .invalidPeerData)
            #expect(pd.finish(pair.decodeID)?.message?.contains("--disaggregation-auth-key") == true, "\(String(describing: pd.finish(pair.decodeID)))")
            // The prefill half never got a destination: it ends by its bootstrap timeout.
            pd.clock.advance(31)
            settle(pd, [pair.prefillID, pair.decodeID])
        }
    }
}

/// Tags catch forged, replayed and damaged frames; registrations must be fresh and signed.
struct ChannelAuthTests {
    static let key = try! ChannelKey(secret: "a shared secret of this deployment")
    static let other = try! ChannelKey(secret: "somebody else's secret, not ours")

    enum Keys: String, CaseIterable, Sendable { case prefillOnly, decodeOnly, different }

    @Test func tagsRefuseForgedReplayedAndDamagedFrames() throws {
        let session = Self.key.sessionKey(prefillNonce: Array(0..<16), decodeNonce: Array(16..<32))
        let sender = FrameSeal(key: session, side: .prefill)
        let frames = [TransferMessage.status(room: 1, success: true, message: ""), .abort(room: 2, reason: "x")].map(TransferCodec.encode)
        let tags = frames.map(sender.tagNext)
        // In order, each frame checks.
        let receiver = FrameSeal(key: session, side: .decode)
        for (frame, tag) in zip(frames, tags) { try receiver.checkNext(frame, tag: tag) }
        // Replayed: the counter moved on.
        #expect(throws: TransferProtocolError.self) { try FrameSeal(key: session, side: .decode).checkNext(frames[1], tag: tags[0]) }
        #expect(throws: TransferProtocolError.self) { try receiver.checkNext(frames[0], tag: tags[0]) }
        // Another room in the same frame.
        var damaged = frames[0]
        damaged[TransferCodec.headerSize] ^= 1
        #expect(throws: TransferProtocolError.self) { try FrameSeal(key: session, side: .decode).checkNext(damaged, tag: tags[0]) }
        // A frame sent back the other way (the direction is in the tag).
        #expect(throws: TransferProtocolError.self) { try FrameSeal(key: session, side: .prefill).checkNext(frames[0], tag: tags[0]) }
        // Another key.
        let stranger = FrameSeal(key: Self.other.sessionKey(prefillNonce: Array(0..<16), decodeNonce: Array(16..<32)), side: .decode)
        #expect(throws: TransferProtocolError.self) { try stranger.checkNext(frames[0], tag: tags[0]) }
    }

    @Test func registrationsMustBeFreshAndSignedWithTheKey() throws {
        let body = Array(#"{"rank_ip": "127.0.0.1"}"#.utf8)
        let now = 1_800_000_000.0
        let signature = BootstrapAuth.registrationSignature(Self.key, body: body, now: now)
        #expect(BootstrapAuth.refusal(ofRegistration: signature, body: body, key: Self.key, now: now + 10) == nil)
        #expect(BootstrapAuth.refusal(ofRegistration: signature, body: body, key: Self.key, now: now + 301)?.contains("old") == true)
        #expect(BootstrapAuth.refusal(ofRegistration: signature, body: body + [32], key: Self.key, now: now) != nil)
        #expect(BootstrapAuth.refusal(ofRegistration: signature, body: body, key: Self.other, now: now) != nil)
        #expect(BootstrapAuth.refusal(ofRegistration: nil, body: body, key: Self.key, now: now) != nil)
        #expect(BootstrapAuth.refusal(ofRegistration: "zz.yy", body: body, key: Self.key, now: now) != nil)
    }

    @Test func shortSecretsAreRefused() {
        #expect(throws: ConfigurationError.self) { try ChannelKey(secret: "short") }
        #expect(ChannelKey.randomSecret().count == 64)
    }
}
