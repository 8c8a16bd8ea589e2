/// `fake`: moves nothing and succeeds at once (SGLang's fake backend, for
/// warm-up and plumbing). The decode decodes from whatever its pages hold:
/// outputs are meaningless.
final class FakeTransferBackend: TransferBackend {
    let name = "fake"
    let localDescriptor: [UInt8] = []
    let movesNothing = true

    func makeWriter(peerDescriptor: [UInt8], connection: FrameConnection) throws -> any KVPageWriter { Writer() }
    func makeLander(peerDescriptor: [UInt8], connection: FrameConnection) throws -> any KVPageLander { Lander() }
    func shutdown() {}

    struct Writer: KVPageWriter {
        func write(room: UInt64, firstIndex: Int, source: [Int32], destination: [Int32]) throws {}
    }

    struct Lander: KVPageLander {
        var writer: PageWriterLocation { .local }
    }
}
