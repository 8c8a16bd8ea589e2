import Kernels

/// Everything that crosses a transfer connection, as one typed enum.
/// `TransferCodec` is the only place that knows the bytes.
public enum TransferMessage: Sendable, Equatable {
    /// Prefill → decode, the first frame of every connection: a fresh nonce
    /// the decode's hello proof must cover (`TransferHandshake`).
    case challenge(nonce: [UInt8])
    /// Then one each way: who is talking and what its KV pool looks like.
    case hello(Hello)
    /// Decode → prefill: where room `room`'s KV goes.
    case transferRequest(TransferRequest)
    /// Prefill → decode: pages `firstIndex..<firstIndex+pageCount` of the
    /// room's page list, every layer's K then V, follow as raw bytes.
    case kvPages(KVPages)
    /// Prefill → decode (shm): the prefill wrote those pages into the shared pool itself.
    case kvWritten(room: UInt64, firstIndex: UInt32, pageCount: UInt32)
    /// Prefill → decode: the first token and its logprobs.
    case metadata(Metadata)
    /// Either way: the room's final state.
    case status(room: UInt64, success: Bool, message: String)
    /// Either way: stop working on the room.
    case abort(room: UInt64, reason: String)
    /// Prefill → decode: the abort was seen and nothing more will be sent for the room.
    case abortAck(room: UInt64)
    /// Keeps idle connections honest.
    case heartbeat(sequence: UInt64)
    /// A refusal that ends the connection (version or layout mismatch).
    case error(message: String)

    public struct Hello: Sendable, Equatable {
        public var role: String
        public var instance: String
        public var layout: KVLayout
        /// The transfer backend's name; both sides must use the same one.
        public var backend: String
        /// Opaque to everything but that backend: what the peer's backend
        /// needs to reach this side's pool (shm: the pool file; tcp: nothing).
        public var descriptor: [UInt8]
        /// Prefill → decode: this connection's session number. After the
        /// connection is lost, the decode asks the prefill's bootstrap
        /// server whether the session's transfer jobs have all run
        /// (`GET /drained?session=`) before it reuses pages the prefill could write.
        public var session: UInt64
        /// Decode → prefill: a fresh nonce the prefill's proof must cover.
        public var nonce: [UInt8]
        /// With a shared auth key: the HMAC that shows the sender holds it
        /// (empty without one).
        public var proof: [UInt8]

        public init(role: String, instance: String, layout: KVLayout, backend: String, descriptor: [UInt8] = [], session: UInt64 = 0,
                    nonce: [UInt8] = [], proof: [UInt8] = []) {
            self.role = role
            self.instance = instance
            self.layout = layout
            self.backend = backend
            self.descriptor = descriptor
            self.session = session
            self.nonce = nonce
            self.proof = proof
        }
    }

    public struct TransferRequest: Sendable, Equatable {
        public var room: UInt64
        /// Destination page ids, one per prompt page.
        public var pages: [UInt32]
        public var promptLength: UInt32
        /// Tokens the decode side already holds (0: it needs everything).
        public var decodePrefixLength: UInt32

        public init(room: UInt64, pages: [UInt32], promptLength: UInt32, decodePrefixLength: UInt32 = 0) {
            self.room = room
            self.pages = pages
            self.promptLength = promptLength
            self.decodePrefixLength = decodePrefixLength
        }
    }

    public struct KVPages: Sendable, Equatable {
        public var room: UInt64
        public var firstIndex: UInt32
        public var pageCount: UInt32
        /// Raw bytes that follow the frame's fixed part.
        public var byteCount: UInt64

        public init(room: UInt64, firstIndex: UInt32, pageCount: UInt32, byteCount: UInt64) {
            self.room = room
            self.firstIndex = firstIndex
            self.pageCount = pageCount
            self.byteCount = byteCount
        }
    }

    public struct Metadata: Sendable, Equatable {
        public var room: UInt64
        public var token: UInt32
        public var logprob: Float?
        public var top: [TokenScore]

        public init(room: UInt64, token: UInt32, logprob: Float?, top: [TokenScore]) {
            self.room = room
            self.token = token
            self.logprob = logprob
            self.top = top
        }
    }

    public struct TokenScore: Sendable, Equatable {
        public var token: UInt32
        public var logprob: Float

        public init(token: UInt32, logprob: Float) {
            self.token = token
            self.logprob = logprob
        }
    }

    /// The room a message is about, if any.
    public var room: UInt64? {
        switch self {
        case .transferRequest(let r): r.room
        case .kvPages(let p): p.room
        case .kvWritten(let room, _, _), .status(let room, _, _), .abort(let room, _), .abortAck(let room): room
        case .metadata(let m): m.room
        case .challenge, .hello, .heartbeat, .error: nil
        }
    }
}

/// The shape of a KV pool; both sides must agree before any page moves:
/// the model, the page size and the cache spec (every tensor of every layer).
public struct KVLayout: Sendable, Equatable {
    public var pageSize: UInt32
    public var spec: KVCacheSpec
    /// Identifies the model's shape, so mismatched checkpoints are refused.
    public var model: String

    public init(pageSize: UInt32, spec: KVCacheSpec, model: String) {
        self.pageSize = pageSize
        self.spec = spec
        self.model = model
    }

    /// K and V of `width` elements per layer; dtype 0 fp32, 1 bf16.
    public init(layers: UInt32, pageSize: UInt32, width: UInt32, dtype: UInt8, model: String) {
        self.init(pageSize: pageSize, spec: .keyValue(layers: Int(layers), width: Int(width), dtype: dtype == 0 ? .f32 : .bf16), model: model)
    }

    public var layers: UInt32 { UInt32(spec.layers) }

    /// Why two pools cannot exchange pages, or nil.
    public func mismatch(with other: KVLayout) -> String? {
        if model != other.model { return "model differs: \(model) here, \(other.model) there" }
        if pageSize != other.pageSize { return "page size differs: \(pageSize) here, \(other.pageSize) there (use the same --page-size)" }
        guard spec != other.spec else { return nil }
        let dtypes = Set(spec.tensors.map(\.dtype)).union(other.spec.tensors.map(\.dtype))
        let hint = dtypes.count > 1 ? " (use the same --kv-cache-dtype)" : ""
        return "KV cache differs: \(spec) here, \(other.spec) there\(hint)"
    }
}
