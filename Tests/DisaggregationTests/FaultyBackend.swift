@testable import Disaggregation
import Foundation
import Kernels

/// What the fault-injecting backend does to the next page write it sees.
enum WriteFault: Sendable, Equatable {
    case none
    /// Stops inside the write until released: tcp after the frame header and
    /// the first byte range (the decode's reader is inside `readv`), shm
    /// before the copy (the prefill is about to write into the decode pool).
    case holdMidWrite
    /// The write throws: the prefill treats the link as broken.
    case failWrite
    /// Sends a frame that lies about its pages (out of the room's range).
    case malformedFrame
}

/// Shared between the test and the faulty writers: arms a fault for the
/// next write and lets the test wait until a held write is in progress.
final class FaultInjector: @unchecked Sendable {
    private let condition = NSCondition()
    private var armed = WriteFault.none
    private var holding = false
    private var released = false
    private(set) var writes = 0

    func arm(_ fault: WriteFault) {
        condition.withLock {
            armed = fault
            released = false
        }
    }

    /// Takes the armed fault for one write (every later write runs normally).
    func take() -> WriteFault {
        condition.withLock {
            writes += 1
            let fault = armed
            armed = .none
            return fault
        }
    }

    func hold() {
        condition.lock()
        holding = true
        condition.broadcast()
        let deadline = Date().addingTimeInterval(20)
        while !released && Date() < deadline { _ = condition.wait(until: deadline) }
        holding = false
        condition.unlock()
    }

    func release() {
        condition.withLock {
            released = true
            condition.broadcast()
        }
    }

    var isHolding: Bool { condition.withLock { holding } }

    /// Waits (bounded) until a write is held.
    func waitUntilHolding(timeout: Double = 10) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date().addingTimeInterval(timeout)
        while !holding && Date() < deadline { _ = condition.wait(until: deadline) }
        return holding
    }
}

/// A real backend (tcp or shm) with faults injected into the prefill's writes.
final class FaultyBackend: TransferBackend, @unchecked Sendable {
    let inner: any TransferBackend
    let faults: FaultInjector
    let storage: PagedKVStorage

    init(inner: any TransferBackend, faults: FaultInjector, storage: PagedKVStorage) {
        self.inner = inner
        self.faults = faults
        self.storage = storage
    }

    var name: String { inner.name }
    var localDescriptor: [UInt8] { inner.localDescriptor }
    var movesNothing: Bool { inner.movesNothing }
    func shutdown() { inner.shutdown() }

    func makeWriter(peerDescriptor: [UInt8], connection: FrameConnection) throws -> any KVPageWriter {
        Writer(inner: try inner.makeWriter(peerDescriptor: peerDescriptor, connection: connection), backend: inner.name,
               faults: faults, storage: storage, connection: connection)
    }

    func makeLander(peerDescriptor: [UInt8], connection: FrameConnection) throws -> any KVPageLander {
        try inner.makeLander(peerDescriptor: peerDescriptor, connection: connection)
    }

    struct Writer: KVPageWriter, @unchecked Sendable {
        let inner: any KVPageWriter
        let backend: String
        let faults: FaultInjector
        let storage: PagedKVStorage
        let connection: FrameConnection

        func write(room: UInt64, firstIndex: Int, source: [Int32], destination: [Int32]) throws {
            switch faults.take() {
            case .none:
                try inner.write(room: room, firstIndex: firstIndex, source: source, destination: destination)
            case .failWrite:
                throw TransferError("injected write failure")
            case .malformedFrame:
                if backend == "tcp" {
                    let frame = TransferMessage.KVPages(room: room, firstIndex: 10_000, pageCount: UInt32(source.count),
                                                        byteCount: KVDataPlane.byteCount(pages: source.count, storage: storage))
                    let parts = KVDataPlane.ranges(of: source, in: storage).map { UnsafeRawBufferPointer($0) }
                    try connection.send(.kvPages(frame), raw: parts)
                } else {
                    try connection.send(.kvWritten(room: room, firstIndex: 10_000, pageCount: UInt32(source.count)))
                }
            case .holdMidWrite:
                if backend == "tcp" {
                    let frame = TransferMessage.KVPages(room: room, firstIndex: UInt32(firstIndex), pageCount: UInt32(source.count),
                                                        byteCount: KVDataPlane.byteCount(pages: source.count, storage: storage))
                    let parts = KVDataPlane.ranges(of: source, in: storage).map { UnsafeRawBufferPointer($0) }
                    try connection.send(.kvPages(frame), raw: [parts[0]])
                    faults.hold()
                    try connection.sendRaw(Array(parts.dropFirst()))
                } else {
                    faults.hold()
                    try inner.write(room: room, firstIndex: firstIndex, source: source, destination: destination)
                }
            }
        }
    }
}
