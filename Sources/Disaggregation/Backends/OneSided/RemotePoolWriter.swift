import Foundation
import Kernels

/// Prefill side of a one-sided engine: turns a room's page runs into one
/// list of (local address, address in the decode's pool, length) ranges —
/// the same merged runs the shm backend copies, one per pool buffer — hands
/// them to the engine, and reports the chunk written only once the engine
/// said every byte is in the decode's memory.
final class RemotePoolWriter: KVPageWriter, @unchecked Sendable {
    /// Writes the ranges; returns only when none of them can still land.
    typealias Post = @Sendable (_ local: [UInt64], _ remote: [UInt64], _ lengths: [UInt64]) throws -> Void

    private let peer: RemotePoolDescriptor
    private let storage: PagedKVStorage
    private let connection: FrameConnection
    private let post: Post
    private let release: @Sendable () -> Void

    /// `release` runs when the connection's writer goes (drops what the engine holds for this peer).
    init(peer: RemotePoolDescriptor, storage: PagedKVStorage, connection: FrameConnection,
         post: @escaping Post, release: @escaping @Sendable () -> Void = {}) {
        self.peer = peer
        self.storage = storage
        self.connection = connection
        self.post = post
        self.release = release
    }

    deinit { release() }

    func write(room: UInt64, firstIndex: Int, source: [Int32], destination: [Int32]) throws {
        let (local, target, lengths) = try ranges(source: source, destination: destination)
        try post(local, target, lengths)
        try connection.send(.kvWritten(room: room, firstIndex: UInt32(firstIndex), pageCount: UInt32(source.count)))
    }

    /// The (local, remote, length) ranges of a chunk: per pool buffer, one per merged run. The decode's
    /// buffers lie where `PagedKVStorage` puts them for its own page count.
    func ranges(source: [Int32], destination: [Int32]) throws -> (local: [UInt64], remote: [UInt64], lengths: [UInt64]) {
        let runs = PageRun.merge(sources: source, destinations: destination)
        let remotePages = peer.pageCount(like: storage)
        try PageRun.checkDestinations(runs, within: remotePages, pool: "the decode's pool")
        let remoteOffsets = storage.spec.bufferOffsets(pageCount: remotePages, pageSize: storage.pageSize)
        var local: [UInt64] = [], remote: [UInt64] = [], lengths: [UInt64] = []
        for (buffer, offset) in zip(storage.buffers, remoteOffsets) {
            let pageBytes = UInt64(buffer.bytesPerPage)
            for run in runs {
                local.append(UInt64(UInt(bitPattern: buffer.base)) + UInt64(run.source) * pageBytes)
                remote.append(peer.poolBase + UInt64(offset) + UInt64(run.destination) * pageBytes)
                lengths.append(UInt64(run.count) * pageBytes)
            }
        }
        return (local, remote, lengths)
    }
}

/// Decode side of a one-sided engine: the prefill writes into this pool itself.
struct RemotePoolLander: KVPageLander {
    let peer: RemotePoolDescriptor
    var writer: PageWriterLocation { .remote }
    /// On this host a dead prefill provably writes nothing; elsewhere only its confirmation counts.
    func peerMayStillWrite() -> Bool {
        peer.bootID != SharedMemoryDescriptor.currentBootID || ProcessLiveness.isRunning(peer.processID)
    }
}
