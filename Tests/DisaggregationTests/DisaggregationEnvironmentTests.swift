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

    @Test func randomBytesNeverCrashTheDecoder() {
        var state: UInt64 = 0x9E37_79B9
        for _ in 0..<5_000 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let type = UInt16(truncatingIfNeeded: state >> 33) % 12
            let count = Int(state >> 50) % 64
            let payload = (0..<count).map { i in UInt8(truncatingIfNeeded: (state >> UInt64(i % 56)) &+ UInt64(i)) }
            _ = try? TransferCodec.decode(.init(type: type, payloadLength: UInt64(count)), payload: payload)
        }
    }

    @Test func pageRunsMergeOnlyWhereBothSidesAreConsecutive() {
        let runs = PageRun.merge(sources: [4, 5, 6, 9, 10], destinations: [0, 1, 3, 4, 5])
        #expect(runs == [PageRun(source: 4, destination: 0, count: 2), PageRun(source: 6, destination: 3, count: 1),
                         PageRun(source: 9, destination: 4, count: 2)])
    }
}
