import Foundation
import Kernels
#if canImport(Glibc)
import Glibc
#endif

/// `shm`, for both instances on one host: the decode's KV pool lives in a
/// shared-memory file it created; the prefill maps that file and copies page
/// runs straight into it, then tells the decode which pages landed.
///
/// The prefill writes into the decode's memory itself, so the decode may
/// reuse a room's pages only after the prefill confirmed the room's end (its
/// confirmations follow its copies on one serial queue) or once the prefill
/// process is gone: `peerMayStillWrite` looks that up by process id.
final class SharedMemoryTransferBackend: TransferBackend {
    let name = "shm"
    let movesNothing = false
    private let storage: PagedKVStorage
    private let side: TransferBackends.Side

    init(context: TransferBackends.Context) throws {
        storage = context.storage
        side = context.side
        if side == .decode, storage.sharedMemoryPath == nil {
            throw ConfigurationError("the shm backend needs the decode's KV pool in shared memory")
        }
    }

    var localDescriptor: [UInt8] {
        SharedMemoryDescriptor(poolPath: side == .decode ? storage.sharedMemoryPath ?? "" : "",
                               processID: getpid(), bootID: SharedMemoryDescriptor.currentBootID).encoded
    }

    func makeWriter(peerDescriptor: [UInt8], connection: FrameConnection) throws -> any KVPageWriter {
        let peer = try SharedMemoryDescriptor(decoding: peerDescriptor)
        try peer.checkSameHost()
        return Writer(storage: storage, pool: try SharedPoolMapping(path: peer.poolPath, spec: storage.spec, pageSize: storage.pageSize), connection: connection)
    }

    func makeLander(peerDescriptor: [UInt8], connection: FrameConnection) throws -> any KVPageLander {
        let peer = try SharedMemoryDescriptor(decoding: peerDescriptor)
        try peer.checkSameHost()
        return Lander(peerProcessID: peer.processID)
    }

    /// The decode removes its pool file: a clean stop leaves nothing under /dev/shm.
    func shutdown() {
        if side == .decode, let path = storage.sharedMemoryPath { unlink(path) }
    }

    struct Writer: KVPageWriter {
        let storage: PagedKVStorage
        let pool: SharedPoolMapping
        let connection: FrameConnection

        func write(room: UInt64, firstIndex: Int, source: [Int32], destination: [Int32]) throws {
            try KVDataPlane.copy(source: source, destination: destination, from: storage, to: pool)
            try connection.send(.kvWritten(room: room, firstIndex: UInt32(firstIndex), pageCount: UInt32(source.count)))
        }
    }

    struct Lander: KVPageLander {
        let peerProcessID: Int32
        var writer: PageWriterLocation { .remote }
        func peerMayStillWrite() -> Bool { ProcessLiveness.isRunning(peerProcessID) }
    }
}

/// What each side of an shm pair tells the other: the decode's pool file,
/// and for both the process id and the boot id (same host check).
struct SharedMemoryDescriptor: Equatable {
    var poolPath: String
    var processID: Int32
    var bootID: String

    var encoded: [UInt8] {
        var w = ByteWriter()
        w.string(poolPath); w.u32(UInt32(bitPattern: processID)); w.string(bootID)
        return w.data
    }

    init(poolPath: String, processID: Int32, bootID: String) {
        self.poolPath = poolPath
        self.processID = processID
        self.bootID = bootID
    }

    init(decoding bytes: [UInt8]) throws {
        var r = ByteReader(bytes[...])
        poolPath = try r.string()
        processID = Int32(bitPattern: try r.u32())
        bootID = try r.string()
        guard r.remaining == 0, processID > 0 else { throw TransferProtocolError("malformed shm descriptor") }
    }

    func checkSameHost() throws {
        guard bootID == Self.currentBootID else {
            throw TransferError("the shm backend needs both instances on one host (boot ids differ); use tcp across hosts")
        }
    }

    static let currentBootID: String = {
        (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "unknown"
    }()
}

/// Whether a process can still run (and so still write shared memory).
enum ProcessLiveness {
    static func isRunning(_ pid: Int32) -> Bool {
        if kill(pid, 0) != 0 && errno == ESRCH { return false }
        // A killed child its parent has not reaped yet still answers kill(0): a zombie runs nothing.
        if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
           let close = stat.lastIndex(of: ")") {
            let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first
            if state == "Z" || state == "X" { return false }
        }
        return true
    }
}

/// Names of decode pool files: random (no guessing another instance's
/// pool), with the owner's pid so files of dead instances can be swept.
public enum SharedPoolFile {
    static let directory = "/dev/shm"
    static let prefix = "pdserve-kv-"

    /// A fresh path for this process's pool; sweeps pool files whose owner died first.
    public static func newPath() -> String {
        removeStale()
        let random = (0..<2).map { _ in String(UInt64.random(in: .min ... .max), radix: 16) }.joined()
        return "\(directory)/\(prefix)\(getpid())-\(random)"
    }

    /// Removes pool files left by instances that were killed (a clean stop removes its own).
    static func removeStale() {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names where name.hasPrefix(prefix) {
            let rest = name.dropFirst(prefix.count)
            guard let dash = rest.firstIndex(of: "-"), let pid = Int32(rest[..<dash]), pid > 0 else { continue }
            if !ProcessLiveness.isRunning(pid) { unlink("\(directory)/\(name)") }
        }
    }

    /// Whether `path` has the shape of a pool file this code creates.
    static func isPoolPath(_ path: String) -> Bool {
        guard path.hasPrefix("\(directory)/\(prefix)") else { return false }
        let name = path.dropFirst(directory.count + 1)
        return !name.contains("/") && name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" }
    }
}
