import Disaggregation
import Foundation
import Kernels

/// `pdserve bench transfer`: how fast each KV transfer backend moves pages,
/// against the two things it can at best match, measured in the same run:
/// a plain memcpy (the shm backend's bound) and a plain loopback TCP socket
/// carrying the same bytes (the tcp backend's bound).
public struct TransferBenchmark {
    public struct Options: Sendable {
        /// Transfer sizes, in pages of the layout below.
        public var pageCounts = [1, 4, 16, 64, 256, 1024]
        public var repeats = 5
        public var layers = 8
        public var pageSize = 16
        /// kv heads × head dim.
        public var width = 256
        public var dtype = DType.f32
        public init() {}
    }

    public struct Row: Codable, Sendable {
        public var pages: Int
        public var bytes: Int
        public var memcpyGBps: Double
        public var socketGBps: Double
        public var tcpGBps: Double
        public var shmGBps: Double
        /// nil when NIXL is not installed.
        public var nixlGBps: Double?
        /// nil when Mooncake is not installed.
        public var mooncakeGBps: Double?
        public var tcpVsSocket: Double { tcpGBps / socketGBps }
        public var shmVsMemcpy: Double { shmGBps / memcpyGBps }
        public var nixlVsMemcpy: Double? { nixlGBps.map { $0 / memcpyGBps } }
    }

    let options: Options
    public init(options: Options) { self.options = options }

    public func run(progress: (String) -> Void) throws -> [Row] {
        let maxPages = options.pageCounts.max() ?? 1
        let source = try PagedKVStorage(layers: options.layers, pageCount: maxPages, pageSize: options.pageSize, width: options.width, dtype: options.dtype)
        let target = try PagedKVStorage(layers: options.layers, pageCount: maxPages, pageSize: options.pageSize, width: options.width, dtype: options.dtype)
        let sharedPath = SharedPoolFile.newPath()
        let shared = try PagedKVStorage(layers: options.layers, pageCount: maxPages, pageSize: options.pageSize, width: options.width,
                                        dtype: options.dtype, sharedMemoryPath: sharedPath)
        let layout = KVLayout(layers: UInt32(options.layers), pageSize: UInt32(options.pageSize), width: UInt32(options.width),
                              dtype: options.dtype == .f32 ? 0 : 1, model: "bench")
        let pool = try SharedPoolMapping(path: sharedPath, layout: layout)
        // Touch every byte once so page faults are not timed.
        for storage in [source, target, shared] {
            for layer in 0..<storage.layers {
                storage.keys(layer: layer).initializeMemory(as: UInt8.self, repeating: 1, count: storage.bytesPerLayerBuffer)
                storage.values(layer: layer).initializeMemory(as: UInt8.self, repeating: 2, count: storage.bytesPerLayerBuffer)
            }
        }
        let plain = try SocketPair()
        let framed = try SocketPair()
        let nixl = try OneSidedPair("nixl", source: source, target: target, layout: layout, progress: progress)
        let mooncake = try OneSidedPair("mooncake", source: source, target: target, layout: layout, progress: progress)
        var rows: [Row] = []
        for pages in options.pageCounts {
            let bytes = Int(KVDataPlane.byteCount(pages: pages, storage: source))
            // Small transfers repeat inside one timing so clock noise does not dominate.
            let inner = max(1, (64 << 20) / bytes)
            let ids = (0..<Int32(pages)).map { $0 }
            progress("  \(pages) pages (\(format(bytes: bytes)) per transfer, \(inner)× per sample, \(options.repeats) samples)")
            let staging = OwnedBuffer(byteCount: bytes), landing = OwnedBuffer(byteCount: bytes)
            staging.pointer.initializeMemory(as: UInt8.self, repeating: 3, count: bytes)
            landing.pointer.initializeMemory(as: UInt8.self, repeating: 4, count: bytes)

            let memcpy = try measure(bytes: bytes * inner) {
                for _ in 0..<inner { landing.pointer.copyMemory(from: staging.pointer, byteCount: bytes) }
            }
            let socket = try measure(bytes: bytes * inner) {
                try plain.exchange(times: inner, send: { try $0.sendRaw([UnsafeRawBufferPointer(start: staging.pointer, count: bytes)]) },
                                   receive: { [landing] in try $0.read(into: landing.pointer, count: bytes) })
            }
            let tcp = try measure(bytes: bytes * inner) {
                try framed.exchange(times: inner, send: { try KVDataPlane.send(room: 1, firstIndex: 0, source: ids, from: source, over: $0) },
                                    receive: { [target] connection in
                                        _ = try connection.readFrame()
                                        try KVDataPlane.receive(destination: ids, into: target, from: connection)
                                    })
            }
            let shm = try measure(bytes: bytes * inner) {
                for _ in 0..<inner { try KVDataPlane.copy(source: ids, destination: ids, from: source, to: pool) }
            }
            let oneSided = try [nixl, mooncake].map { pair in
                try pair.map { pair in
                    try measure(bytes: bytes * inner) {
                        try pair.notices.exchange(times: inner, send: { _ in try pair.writer.write(room: 1, firstIndex: 0, source: ids, destination: ids) },
                                                  receive: { _ = try $0.readFrame() })
                    }
                }
            }
            let row = Row(pages: pages, bytes: bytes, memcpyGBps: memcpy, socketGBps: socket, tcpGBps: tcp, shmGBps: shm,
                          nixlGBps: oneSided[0], mooncakeGBps: oneSided[1])
            progress(String(format: "    memcpy %.2f GB/s, socket %.2f GB/s, tcp backend %.2f GB/s (%.2f× socket), shm backend %.2f GB/s (%.2f× memcpy)",
                            memcpy, socket, tcp, row.tcpVsSocket, shm, row.shmVsMemcpy)
                     + (row.nixlGBps.map { String(format: ", nixl backend %.2f GB/s (%.2f× memcpy)", $0, $0 / memcpy) } ?? "")
                     + (row.mooncakeGBps.map { String(format: ", mooncake backend %.2f GB/s (%.2f× socket)", $0, $0 / socket) } ?? ""))
            rows.append(row)
        }
        return rows
    }

    /// Median GB/s over the samples.
    private func measure(bytes: Int, _ body: () throws -> Void) throws -> Double {
        try body()  // warm-up
        var rates: [Double] = []
        for _ in 0..<options.repeats {
            let start = ContinuousClock.now
            try body()
            let elapsed = ContinuousClock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            rates.append(Double(bytes) / seconds / 1e9)
        }
        return rates.sorted()[rates.count / 2]
    }

    private func format(bytes: Int) -> String {
        bytes >= 1 << 20 ? "\(bytes >> 20) MiB" : "\(bytes >> 10) KiB"
    }
}

/// A one-sided backend (nixl, mooncake) between two pools of this process
/// (two engines): the writer WRITEs into the target pool and sends its
/// `kvWritten` notice over `notices`. nil, with a note, when the engine is
/// not installed.
struct OneSidedPair {
    let writer: any KVPageWriter
    let notices: SocketPair
    private let backends: [any TransferBackend]

    init?(_ name: String, source: PagedKVStorage, target: PagedKVStorage, layout: KVLayout, progress: (String) -> Void) throws {
        let sending: any TransferBackend, receiving: any TransferBackend
        do {
            sending = try TransferBackends.make(name, context: .init(side: .prefill, storage: source, layout: layout))
            receiving = try TransferBackends.make(name, context: .init(side: .decode, storage: target, layout: layout))
        } catch {
            progress("  \(name) left out: \(error)")
            return nil
        }
        notices = try SocketPair()
        writer = try sending.makeWriter(peerDescriptor: receiving.localDescriptor, connection: notices.client)
        backends = [sending, receiving]
    }
}

/// Two ends of a loopback TCP connection; `exchange` runs the receiver on
/// its own thread so both sides work at once, as across two processes.
final class SocketPair: @unchecked Sendable {
    let listener: FrameListener
    let client: FrameConnection
    let server: FrameConnection

    init() throws {
        listener = try FrameListener(host: "127.0.0.1", port: 0)
        client = try FrameConnection.connect(host: "127.0.0.1", port: listener.port, timeout: 5)
        guard let accepted = listener.accept() else { throw TransferError("loopback accept failed") }
        server = accepted
    }

    func exchange(times: Int, send: (FrameConnection) throws -> Void, receive: @escaping @Sendable (FrameConnection) throws -> Void) throws {
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var failure: Error?
        let server = self.server
        let thread = Thread {
            do { for _ in 0..<times { try receive(server) } } catch { failure = error }
            done.signal()
        }
        thread.start()
        for _ in 0..<times { try send(client) }
        done.wait()
        if let failure { throw failure }
    }

    deinit {
        client.close()
        server.close()
        listener.close()
    }
}
