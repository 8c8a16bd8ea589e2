import Engine
import Kernels

/// One KV transfer engine of an instance (SGLang's KVManager): it knows this
/// instance's pool, describes it to peers, and moves page bytes. The
/// side-cars own rooms, queues, the control connection and every decision
/// about when a page may be reused; a backend only moves bytes and says who
/// writes them. A new backend is a new conformer plus one line in
/// `TransferBackends.all`; no side-car code changes.
public protocol TransferBackend: AnyObject, Sendable {
    /// The `--disaggregation-transfer-backend` name.
    var name: String { get }
    /// Sent in this side's hello: what the peer's backend needs to reach this
    /// pool (shm: the pool file; tcp: nothing). Opaque to the side-cars.
    var localDescriptor: [UInt8] { get }
    /// Moves nothing (fake): rooms succeed without any page arriving.
    var movesNothing: Bool { get }
    /// Prefill side, once per decode connection, when its hello arrives.
    func makeWriter(peerDescriptor: [UInt8], connection: FrameConnection) throws -> any KVPageWriter
    /// Decode side, once per prefill connection, when its hello answer arrives.
    func makeLander(peerDescriptor: [UInt8], connection: FrameConnection) throws -> any KVPageLander
    /// Ends what the backend holds outside the process (shm: removes the pool file).
    func shutdown()
}

/// Prefill side: writes page runs into one decode instance's pool (SGLang's
/// KVSender minus the bookkeeping, which the side-car's room keeps). Only
/// ever called on that decode's serial transfer queue, so a room's writes,
/// its metadata and its final status leave in order.
public protocol KVPageWriter: Sendable {
    /// Moves the prompt's pages `source` into the decode room's pages
    /// `destination` (positions `firstIndex…` of its page list). Returns once
    /// the bytes have landed (shm) or been handed to the connection (tcp);
    /// either way nothing of this call writes after it returns.
    func write(room: UInt64, firstIndex: Int, source: [Int32], destination: [Int32]) throws
}

/// Who can write into a decode room's pages while it waits for its KV.
public enum PageWriterLocation: Sendable {
    /// This process's reader thread, and only while it lands a frame: the
    /// pages are safe once the room has ended and the reader is out of them.
    case local
    /// The peer writes straight into this pool: the pages are safe only once
    /// the peer has confirmed the room's end, or can no longer run.
    case remote
}

/// Decode side: turns one prefill connection's data frames into landed pages
/// (SGLang's KVReceiver minus the bookkeeping, which the side-car's room keeps).
public protocol KVPageLander: Sendable {
    var writer: PageWriterLocation { get }
    /// Reads the page bytes following a kvPages frame into `destination`
    /// (local writers; remote writers never receive kvPages).
    func land(_ frame: TransferMessage.KVPages, into destination: [Int32], from connection: FrameConnection) throws
    /// Remote writers: whether the peer may still write into this pool. false
    /// once it provably cannot (its process is gone); true when unknown.
    func peerMayStillWrite() -> Bool
}

extension KVPageLander {
    public func land(_ frame: TransferMessage.KVPages, into destination: [Int32], from connection: FrameConnection) throws {
        throw TransferError("this backend receives no page bytes over the connection")
    }
    public func peerMayStillWrite() -> Bool { writer == .remote }
}

/// The backends this build has, by flag name.
public enum TransferBackends {
    public enum Side: Sendable { case prefill, decode }

    /// What a backend needs to know about its instance.
    public struct Context: Sendable {
        public var side: Side
        public var storage: PagedKVStorage
        public var layout: KVLayout
        public var settings: DisaggregationEnvironment
        /// `--disaggregation-ib-device`, for the backends that drive RDMA devices.
        public var ibDevice: String?
        /// `--host`: where engines that name their own endpoint (mooncake) say peers reach them.
        public var host: String
        public init(side: Side, storage: PagedKVStorage, layout: KVLayout, settings: DisaggregationEnvironment = .defaults,
                    ibDevice: String? = nil, host: String = "127.0.0.1") {
            self.side = side
            self.storage = storage
            self.layout = layout
            self.settings = settings
            self.ibDevice = ibDevice
            self.host = host
        }
    }

    /// Name → factory. SGLang's names that this build lacks are refused by `check`.
    static let all: [String: @Sendable (Context) throws -> any TransferBackend] = [
        "tcp": { TCPTransferBackend(context: $0) },
        "shm": { try SharedMemoryTransferBackend(context: $0) },
        "fake": { _ in FakeTransferBackend() },
        "nixl": { try NIXLTransferBackend(context: $0) },
        "mooncake": { try MooncakeTransferBackend(context: $0) },
    ]

    public static var names: [String] { all.keys.sorted() }

    /// Checks the flag's value before anything is loaded.
    public static func check(_ name: String) throws {
        guard all[name.lowercased()] == nil else { return }
        let known = names.joined(separator: ", ")
        if ["ascend", "mori"].contains(name.lowercased()) {
            throw ConfigurationError("--disaggregation-transfer-backend \(name): this backend is not built yet; use \(known)")
        }
        throw ConfigurationError("--disaggregation-transfer-backend \(name): unknown backend; use \(known)")
    }

    public static func make(_ name: String, context: Context) throws -> any TransferBackend {
        try check(name)
        return try all[name.lowercased()]!(context)
    }

    /// Whether the decode side's pool must live in shared memory for `name`.
    public static func needsSharedPool(_ name: String) -> Bool { name.lowercased() == "shm" }
}
