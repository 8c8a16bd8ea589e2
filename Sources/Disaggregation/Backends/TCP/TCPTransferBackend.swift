import Kernels

/// `tcp`, the default: page bytes travel on the transfer connection itself,
/// gathered from the prefill pool with `writev` and scattered into the
/// decode pool with `readv`; no staging copy on either side.
final class TCPTransferBackend: TransferBackend {
    let name = "tcp"
    let localDescriptor: [UInt8] = []
    let movesNothing = false
    private let storage: PagedKVStorage

    init(context: TransferBackends.Context) { storage = context.storage }

    func makeWriter(peerDescriptor: [UInt8], connection: FrameConnection) throws -> any KVPageWriter {
        Writer(storage: storage, connection: connection)
    }

    func makeLander(peerDescriptor: [UInt8], connection: FrameConnection) throws -> any KVPageLander {
        Lander(storage: storage)
    }

    func shutdown() {}

    struct Writer: KVPageWriter {
        let storage: PagedKVStorage
        let connection: FrameConnection
        func write(room: UInt64, firstIndex: Int, source: [Int32], destination: [Int32]) throws {
            try KVDataPlane.send(room: room, firstIndex: firstIndex, source: source, from: storage, over: connection)
        }
    }

    struct Lander: KVPageLander {
        let storage: PagedKVStorage
        var writer: PageWriterLocation { .local }
        func land(_ frame: TransferMessage.KVPages, into destination: [Int32], from connection: FrameConnection) throws {
            try KVDataPlane.receive(destination: destination, into: storage, from: connection)
        }
    }
}
