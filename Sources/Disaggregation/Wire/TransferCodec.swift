import Kernels

/// The bytes of `TransferMessage`s. A frame is a 16-byte header — magic
/// "PDKV", version (u16), type (u16), payload length (u64), little endian —
/// then the payload. `kvPages` frames count their raw page bytes in the
/// payload length but the codec only handles the fixed part before them.
public enum TransferCodec {
    public static let magic: [UInt8] = Array("PDKV".utf8)
    /// 3: connections open with a challenge; hellos carry a nonce and a proof.
    /// 4: the hello carries the cache spec (every tensor's name, width and dtype) instead of one K/V width.
    public static let version: UInt16 = 4

    public static let headerSize = 16
    /// Largest payload of a frame other than kvPages.
    public static let maxControlPayload = 16 << 20
    /// Size of the fixed part of a kvPages payload.
    public static let kvPagesFixedSize = 24

    enum Kind: UInt16 {
        case hello = 1, transferRequest, kvPages, kvWritten, metadata, status, abort, abortAck, heartbeat, error, challenge
    }

    public struct Header: Sendable, Equatable {
        public var type: UInt16
        public var payloadLength: UInt64
    }

    /// A frame's header and payload (for kvPages, the fixed part only).
    public static func encode(_ message: TransferMessage) -> [UInt8] {
        var w = ByteWriter()
        let kind: Kind
        var extra: UInt64 = 0
        switch message {
        case .challenge(let nonce):
            kind = .challenge
            w.blob(nonce)
        case .hello(let h):
            kind = .hello
            w.string(h.role); w.string(h.instance)
            w.u32(h.layout.layers); w.u32(h.layout.pageSize); w.u32(UInt32(h.layout.spec.tensors.count))
            for tensor in h.layout.spec.tensors { w.string(tensor.name); w.u32(UInt32(tensor.elementsPerToken)); w.u8(tensor.dtype.wireTag) }
            w.string(h.layout.model)
            w.string(h.backend); w.blob(h.descriptor); w.u64(h.session); w.blob(h.nonce); w.blob(h.proof)
        case .transferRequest(let r):
            kind = .transferRequest
            w.u64(r.room); w.u32(r.promptLength); w.u32(r.decodePrefixLength)
            w.u32(UInt32(r.pages.count)); r.pages.forEach { w.u32($0) }
        case .kvPages(let p):
            kind = .kvPages
            w.u64(p.room); w.u32(p.firstIndex); w.u32(p.pageCount); w.u64(p.byteCount)
            extra = p.byteCount
        case let .kvWritten(room, first, count):
            kind = .kvWritten
            w.u64(room); w.u32(first); w.u32(count)
        case .metadata(let m):
            kind = .metadata
            w.u64(m.room); w.u32(m.token); w.u8(m.logprob == nil ? 0 : 1); w.f32(m.logprob ?? 0)
            w.u32(UInt32(m.top.count)); m.top.forEach { w.u32($0.token); w.f32($0.logprob) }
        case let .status(room, success, text):
            kind = .status
            w.u64(room); w.u8(success ? 1 : 0); w.string(text)
        case let .abort(room, reason):
            kind = .abort
            w.u64(room); w.string(reason)
        case .abortAck(let room):
            kind = .abortAck
            w.u64(room)
        case .heartbeat(let sequence):
            kind = .heartbeat
            w.u64(sequence)
        case .error(let text):
            kind = .error
            w.string(text)
        }
        var frame = ByteWriter()
        frame.bytes(magic); frame.u16(version); frame.u16(kind.rawValue); frame.u64(UInt64(w.data.count) + extra)
        return frame.data + w.data
    }

    /// Checks magic and version and returns type and payload length.
    public static func decodeHeader(_ bytes: [UInt8]) throws(TransferProtocolError) -> Header {
        guard bytes.count == headerSize else { throw TransferProtocolError("truncated frame header") }
        guard Array(bytes[0..<4]) == magic else { throw TransferProtocolError("bad magic: not a PDServe transfer frame") }
        var r = ByteReader(bytes[4...])
        let version = try r.u16()
        guard version == Self.version else { throw TransferProtocolError("unsupported protocol version \(version) (this side speaks \(Self.version))") }
        return Header(type: try r.u16(), payloadLength: try r.u64())
    }

    /// Whether the codec knows this frame type (unknown ones are skipped by receivers).
    public static func isKnown(_ type: UInt16) -> Bool { Kind(rawValue: type) != nil }

    /// How many payload bytes the receiver reads into memory before decoding (kvPages: the fixed part).
    public static func bufferedPayloadLength(_ header: Header) throws(TransferProtocolError) -> Int {
        if header.type == Kind.kvPages.rawValue {
            guard header.payloadLength >= UInt64(kvPagesFixedSize) else { throw TransferProtocolError("kvPages frame shorter than its fixed part") }
            return kvPagesFixedSize
        }
        guard header.payloadLength <= UInt64(maxControlPayload) else {
            throw TransferProtocolError("control frame of \(header.payloadLength) bytes exceeds \(maxControlPayload)")
        }
        return Int(header.payloadLength)
    }

    /// Decodes a known frame's buffered payload.
    public static func decode(_ header: Header, payload: [UInt8]) throws(TransferProtocolError) -> TransferMessage {
        guard let kind = Kind(rawValue: header.type) else { throw TransferProtocolError("unknown frame type \(header.type)") }
        var r = ByteReader(payload[...])
        let message: TransferMessage
        switch kind {
        case .challenge:
            message = .challenge(nonce: try r.blob())
        case .hello:
            let role = try r.string(), instance = try r.string()
            let layers = try r.u32(), pageSize = try r.u32(), count = try r.u32()
            guard count <= KVCacheSpec.maxTensors else { throw TransferProtocolError("hello lists \(count) cache tensors; at most \(KVCacheSpec.maxTensors)") }
            var tensors: [KVCacheSpec.Tensor] = []
            for _ in 0..<count {
                let name = try r.string(), elements = try r.u32(), tag = try r.u8()
                guard let dtype = DType(wireTag: tag) else { throw TransferProtocolError("unknown cache dtype \(tag)") }
                tensors.append(.init(name: name, elementsPerToken: Int(elements), dtype: dtype))
            }
            let layout = KVLayout(pageSize: pageSize, spec: KVCacheSpec(layers: Int(layers), tensors: tensors), model: try r.string())
            let backend = try r.string(), descriptor = try r.blob(), session = try r.u64(), nonce = try r.blob(), proof = try r.blob()
            message = .hello(.init(role: role, instance: instance, layout: layout, backend: backend, descriptor: descriptor, session: session,
                                   nonce: nonce, proof: proof))
        case .transferRequest:
            let room = try r.u64(), promptLength = try r.u32(), prefix = try r.u32()
            let count = Int(try r.u32())
            guard count <= r.remaining / 4 else { throw TransferProtocolError("transferRequest lists \(count) pages but carries fewer") }
            var pages: [UInt32] = []
            pages.reserveCapacity(count)
            for _ in 0..<count { pages.append(try r.u32()) }
            message = .transferRequest(.init(room: room, pages: pages, promptLength: promptLength, decodePrefixLength: prefix))
        case .kvPages:
            let p = TransferMessage.KVPages(room: try r.u64(), firstIndex: try r.u32(), pageCount: try r.u32(), byteCount: try r.u64())
            // Subtract from the checked length: a lying byte count near 2^64 must not overflow a sum.
            guard header.payloadLength >= UInt64(kvPagesFixedSize), p.byteCount == header.payloadLength - UInt64(kvPagesFixedSize) else {
                throw TransferProtocolError("kvPages frame announces \(p.byteCount) page bytes but its length is \(header.payloadLength)")
            }
            message = .kvPages(p)
        case .kvWritten:
            message = .kvWritten(room: try r.u64(), firstIndex: try r.u32(), pageCount: try r.u32())
        case .metadata:
            let room = try r.u64(), token = try r.u32(), hasLogprob = try r.flag(), logprob = try r.f32()
            // Absent is written as 0; other bits there are a damaged frame, not a value to drop.
            guard hasLogprob || logprob.bitPattern == 0 else { throw TransferProtocolError("metadata without a logprob carries one") }
            let count = Int(try r.u32())
            guard count <= r.remaining / 8 else { throw TransferProtocolError("metadata lists \(count) top logprobs but carries fewer") }
            var top: [TransferMessage.TokenScore] = []
            for _ in 0..<count { top.append(.init(token: try r.u32(), logprob: try r.f32())) }
            message = .metadata(.init(room: room, token: token, logprob: hasLogprob ? logprob : nil, top: top))
        case .status:
            message = .status(room: try r.u64(), success: try r.flag(), message: try r.string())
        case .abort:
            message = .abort(room: try r.u64(), reason: try r.string())
        case .abortAck:
            message = .abortAck(room: try r.u64())
        case .heartbeat:
            message = .heartbeat(sequence: try r.u64())
        case .error:
            message = .error(message: try r.string())
        }
        guard r.remaining == 0 else { throw TransferProtocolError("\(kind) frame has \(r.remaining) trailing bytes") }
        return message
    }
}

/// A frame that breaks the protocol; the connection that sent it is closed.
public struct TransferProtocolError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

struct ByteWriter {
    var data: [UInt8] = []
    mutating func bytes(_ b: [UInt8]) { data += b }
    mutating func u8(_ v: UInt8) { data.append(v) }
    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { data += $0 } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { data += $0 } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { data += $0 } }
    mutating func f32(_ v: Float) { u32(v.bitPattern) }
    mutating func string(_ s: String) { blob(Array(s.utf8)) }
    mutating func blob(_ b: [UInt8]) {
        u32(UInt32(b.count))
        data += b
    }
}

struct ByteReader {
    private var bytes: ArraySlice<UInt8>
    init(_ bytes: ArraySlice<UInt8>) { self.bytes = bytes }
    var remaining: Int { bytes.count }

    private mutating func take(_ n: Int) throws(TransferProtocolError) -> ArraySlice<UInt8> {
        guard bytes.count >= n else { throw TransferProtocolError("truncated frame payload") }
        let out = bytes.prefix(n)
        bytes = bytes.dropFirst(n)
        return out
    }

    private mutating func integer<T: FixedWidthInteger>(_: T.Type) throws(TransferProtocolError) -> T {
        let raw = try take(MemoryLayout<T>.size)
        var value: T = 0
        for (i, b) in raw.enumerated() { value |= T(b) << (8 * i) }
        return value
    }

    mutating func u8() throws(TransferProtocolError) -> UInt8 { try integer(UInt8.self) }
    mutating func u16() throws(TransferProtocolError) -> UInt16 { try integer(UInt16.self) }
    mutating func u32() throws(TransferProtocolError) -> UInt32 { try integer(UInt32.self) }
    mutating func u64() throws(TransferProtocolError) -> UInt64 { try integer(UInt64.self) }
    mutating func f32() throws(TransferProtocolError) -> Float { Float(bitPattern: try u32()) }
    /// A boolean byte: 0 or 1, nothing else.
    mutating func flag() throws(TransferProtocolError) -> Bool {
        switch try u8() {
        case 0: return false
        case 1: return true
        case let other: throw TransferProtocolError("flag byte \(other) is neither 0 nor 1")
        }
    }
    mutating func blob() throws(TransferProtocolError) -> [UInt8] {
        let n = Int(try u32())
        guard n <= bytes.count else { throw TransferProtocolError("field of \(n) bytes runs past the frame") }
        return Array(try take(n))
    }
    mutating func string() throws(TransferProtocolError) -> String {
        let raw = try blob()
        guard let s = String(validating: raw, as: UTF8.self) else { throw TransferProtocolError("string is not valid UTF-8") }
        return s
    }
}

extension DType {
    /// How the wire names a dtype: 0 fp32, 1 bf16.
    var wireTag: UInt8 { self == .f32 ? 0 : 1 }

    init?(wireTag: UInt8) {
        switch wireTag {
        case 0: self = .f32
        case 1: self = .bf16
        default: return nil
        }
    }
}
