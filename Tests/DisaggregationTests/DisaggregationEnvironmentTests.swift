import Foundation
import Testing
@testable import Disaggregation

struct DisaggregationEnvironmentTests {
    @Test func defaultsFollowTheDesign() throws {
        let settings = try DisaggregationEnvironment.load([:])
        #expect(settings.queueSize == 4 && settings.bootstrapTimeout == 300 && settings.waitingTimeout == 300)
        #expect(settings.heartbeatInterval == 5 && settings.heartbeatMaxFailure == 2)
        #expect((4...12).contains(settings.threadPoolSize))
    }

    @Test func sglangNamesAreAliasesAndPDServeNamesWin() throws {
        let settings = try DisaggregationEnvironment.load([
            "SGLANG_DISAGGREGATION_QUEUE_SIZE": "7",
            "SGLANG_DISAGGREGATION_HEARTBEAT_INTERVAL": "2.5",
            "PDSERVE_DISAGGREGATION_HEARTBEAT_INTERVAL": "1.5",
            "PDSERVE_DISAGGREGATION_BOOTSTRAP_TIMEOUT": "12",
        ])
        #expect(settings.queueSize == 7)
        #expect(settings.heartbeatInterval == 1.5)
        #expect(settings.bootstrapTimeout == 12)
    }

    @Test(arguments: ["0", "-3", "many", ""])
    func badValuesNameTheVariable(value: String) {
        do {
            _ = try DisaggregationEnvironment.load(["SGLANG_DISAGGREGATION_QUEUE_SIZE": value])
            Issue.record("accepted \(value)")
        } catch {
            #expect("\(error)".contains("SGLANG_DISAGGREGATION_QUEUE_SIZE=\(value)"))
        }
    }
}

struct TransferCodecTests {
    static let layout = KVLayout(layers: 3, pageSize: 16, width: 36, dtype: 0, model: "m")
    static let messages: [TransferMessage] = [
        .hello(.init(role: "decode", instance: "d-1", layout: layout, backend: "shm", descriptor: [0, 1, 2, 255])),
        .hello(.init(role: "prefill", instance: "p", layout: layout, backend: "tcp")),
        .hello(.init(role: "decode", instance: "d", layout: layout, backend: "tcp", nonce: Array(0..<16), proof: Array(repeating: 7, count: 32))),
        .challenge(nonce: Array(100..<116)),
        .transferRequest(.init(room: .max >> 1, pages: [3, 4, 5, 9], promptLength: 50, decodePrefixLength: 0)),
        .kvPages(.init(room: 7, firstIndex: 2, pageCount: 3, byteCount: 4096)),
        .kvWritten(room: 7, firstIndex: 0, pageCount: 2),
        .metadata(.init(room: 8, token: 42, logprob: -0.25, top: [.init(token: 42, logprob: -0.25), .init(token: 3, logprob: -2)])),
        .metadata(.init(room: 8, token: 1, logprob: nil, top: [])),
        .status(room: 9, success: false, message: "ünïcødé reason"),
        .abort(room: 10, reason: "client gone"),
        .abortAck(room: 10),
        .heartbeat(sequence: 99),
        .error(message: "layouts differ"),
    ]

    @Test(arguments: messages)
    func everyMessageRoundTrips(message: TransferMessage) throws {
        let bytes = TransferCodec.encode(message)
        let header = try TransferCodec.decodeHeader(Array(bytes[..<TransferCodec.headerSize]))
        let buffered = try TransferCodec.bufferedPayloadLength(header)
        let payload = Array(bytes[TransferCodec.headerSize..<TransferCodec.headerSize + buffered])
        #expect(try TransferCodec.decode(header, payload: payload) == message)
    }

    @Test func damagedFramesAreRefusedNotTrusted() throws {
        let good = TransferCodec.encode(.transferRequest(.init(room: 1, pages: [1, 2], promptLength: 20)))
        var badMagic = good
        badMagic[0] = UInt8(ascii: "X")
        #expect(throws: TransferProtocolError.self) { try TransferCodec.decodeHeader(Array(badMagic[..<16])) }
        var badVersion = good
        badVersion[4] = 9
        #expect(throws: TransferProtocolError.self) { try TransferCodec.decodeHeader(Array(badVersion[..<16])) }
        let header = try TransferCodec.decodeHeader(Array(good[..<16]))
        // Every truncation of the payload is refused.
        for cut in 0..<(good.count - 16) {
            #expect(throws: TransferProtocolError.self) { try TransferCodec.decode(header, payload: Array(good[16..<16 + cut])) }
        }
        // A page count larger than the payload can hold is refused before allocating.
        var lying = good
        lying[32] = 0xFF; lying[33] = 0xFF; lying[34] = 0xFF; lying[35] = 0x0F
        #expect(throws: TransferProtocolError.self) { try TransferCodec.decode(header, payload: Array(lying[16...])) }
    }

    /// Decodes a frame as a receiver does: header, buffered payload, message. Whatever the bytes,
    /// the result is a protocol error or a message that encodes back to exactly the bytes read
    /// (nothing is invented, defaulted or silently cut).
    static func checkFaithful(_ frame: [UInt8]) -> String? {
        guard frame.count >= TransferCodec.headerSize else { return nil }
        do {
            let header = try TransferCodec.decodeHeader(Array(frame[..<TransferCodec.headerSize]))
            guard TransferCodec.isKnown(header.type) else { return nil }
            let buffered = try TransferCodec.bufferedPayloadLength(header)
            guard frame.count - TransferCodec.headerSize >= buffered else { return nil }
            let read = Array(frame[..<(TransferCodec.headerSize + buffered)])
            let message = try TransferCodec.decode(header, payload: Array(read[TransferCodec.headerSize...]))
            let again = TransferCodec.encode(message)
            return again == read ? nil : "\(message) re-encodes to \(again.count) bytes, not the \(read.count) read"
        } catch {
            return nil
        }
    }

    /// Lying lengths (the frame's, a field's, a list's) and random damage in every kind of frame,
    /// on top of random bytes: never a crash or trap, always a clean refusal or a faithful decode.
    @Test func lyingLengthsAndDamageAreRefusedOrDecodedFaithfully() {
        var state: UInt64 = 0x9E37_79B9
        func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 11
        }
        let lies: [UInt64] = [0, 1, 23, 24, 25, .max, .max - 23, .max - 24, UInt64(Int.max), UInt64(Int.max) + 1,
                              UInt64(UInt32.max), UInt64(TransferCodec.maxControlPayload), UInt64(TransferCodec.maxControlPayload) + 1]
        var failures: [String] = []
        var decoded = 0
        // CI runs 6,000 rounds; PDSERVE_FUZZ_ROUNDS=1000000 runs longer on demand.
        let rounds = ProcessInfo.processInfo.environment["PDSERVE_FUZZ_ROUNDS"].flatMap { Int($0) } ?? 6_000
        for round in 0..<rounds {
            var frame = TransferCodec.encode(Self.messages[round % Self.messages.count])
            switch round % 4 {
            case 0:
                // The frame's payload length lies.
                let lie = next() % 2 == 0 ? lies[Int(next() % UInt64(lies.count))] : next()
                withUnsafeBytes(of: lie.littleEndian) { frame.replaceSubrange(8..<16, with: $0) }
            case 1:
                // A u32 or u64 inside the payload (a field length, a count, kvPages' byte count) lies.
                guard frame.count > TransferCodec.headerSize + 4 else { continue }
                let at = TransferCodec.headerSize + Int(next() % UInt64(frame.count - TransferCodec.headerSize - 3))
                let width = frame.count - at >= 8 && next() % 2 == 0 ? 8 : 4
                let lie = next() % 3 == 0 ? UInt64.max : (next() % 2 == 0 ? next() : next() % 64)
                withUnsafeBytes(of: lie.littleEndian) { frame.replaceSubrange(at..<at + width, with: $0.prefix(width)) }
            case 2:
                // Random bytes flipped, then maybe cut or extended.
                for _ in 0..<(1 + Int(next() % 4)) where frame.count > 8 {
                    frame[8 + Int(next() % UInt64(frame.count - 8))] ^= UInt8(truncatingIfNeeded: next() | 1)
                }
                if next() % 2 == 0 { frame.removeLast(Int(next() % UInt64(frame.count / 2 + 1))) } else { frame += (0..<Int(next() % 9)).map { _ in UInt8(truncatingIfNeeded: next()) } }
            default:
                // A header of any known type over random bytes, with an honest length.
                let type = UInt16(1 + next() % 10)
                let payload = (0..<Int(next() % 80)).map { _ in UInt8(truncatingIfNeeded: next()) }
                frame = TransferCodec.magic + [UInt8(TransferCodec.version & 0xFF), UInt8(TransferCodec.version >> 8), UInt8(type), 0]
                withUnsafeBytes(of: UInt64(payload.count).littleEndian) { frame += $0 }
                frame += payload
            }
            if let failure = Self.checkFaithful(frame) { failures.append(failure) }
            if (try? TransferCodec.decodeHeader(Array(frame.prefix(TransferCodec.headerSize)))) != nil { decoded += 1 }
        }
        #expect(failures.isEmpty, "\(failures.count) unfaithful decodes, first: \(failures.first?.prefix(400) ?? "")")
        #expect(decoded > rounds / 6, "the fuzzer should mostly produce frames with valid headers")
    }

    @Test func aKVPagesByteCountNearTwoToTheSixtyFourIsRefused() {
        let header = TransferCodec.Header(type: 3, payloadLength: 24)
        var payload = [UInt8](repeating: 0, count: 24)
        withUnsafeBytes(of: (UInt64.max - 10).littleEndian) { payload.replaceSubrange(16..<24, with: $0) }
        #expect(throws: TransferProtocolError.self) { try TransferCodec.decode(header, payload: payload) }
        #expect(throws: TransferProtocolError.self) { try TransferCodec.decode(.init(type: 3, payloadLength: 3), payload: payload) }
    }

    @Test func pageRunsMergeOnlyWhereBothSidesAreConsecutive() {
        let runs = PageRun.merge(sources: [4, 5, 6, 9, 10], destinations: [0, 1, 3, 4, 5])
        #expect(runs == [PageRun(source: 4, destination: 0, count: 2), PageRun(source: 6, destination: 3, count: 1),
                         PageRun(source: 9, destination: 4, count: 2)])
    }
}
