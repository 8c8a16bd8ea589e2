@testable import Disaggregation
import Foundation
import Kernels
import Testing

/// Pages of a pool whose spec is not "K then V of one width" — three
/// tensors of unequal widths and mixed dtypes, as MLA-like caches have —
/// move byte-exact through every data plane: tcp's gather/scatter, the shm
/// copy and the one-sided writer's range computation. Any leftover
/// assumption of two equal buffers per layer moves the wrong bytes here.
struct KVCacheSpecTransferTests {
    static let spec = KVCacheSpec(layers: 2, tensors: [
        .init(name: "latent", elementsPerToken: 24, dtype: .f32),
        .init(name: "rope_k", elementsPerToken: 16, dtype: .f32),
        .init(name: "scale", elementsPerToken: 8, dtype: .bf16),
    ])
    static let pageSize = 4
    /// The decode's pool has another page count than the prefill's, so every buffer starts elsewhere.
    static let sourcePages: [Int32] = [3, 4, 5, 9, 10]
    static let targetPages: [Int32] = [0, 1, 7, 2, 3]

    /// A prefill pool whose every byte is distinct from its neighbours'.
    func filledSource() throws -> PagedKVStorage {
        let source = try PagedKVStorage(spec: Self.spec, pageCount: 12, pageSize: Self.pageSize)
        for i in 0..<source.totalBytes { source.base.storeBytes(of: UInt8(truncatingIfNeeded: i &* 31 &+ 7), toByteOffset: i, as: UInt8.self) }
        return source
    }

    /// Every moved page equals its source page in every buffer; every other target page is still zero.
    func expectMoved(from source: PagedKVStorage, to target: PagedKVStorage) {
        #expect(source.buffers.count == 6 && target.buffers.count == 6)
        for (from, to) in zip(source.buffers, target.buffers) {
            let pageBytes = from.bytesPerPage
            for targetPage in 0..<Int32(target.pageCount) {
                let moved = UnsafeRawBufferPointer(start: to.base + Int(targetPage) * pageBytes, count: pageBytes)
                if let index = Self.targetPages.firstIndex(of: targetPage) {
                    let original = UnsafeRawBufferPointer(start: from.base + Int(Self.sourcePages[index]) * pageBytes, count: pageBytes)
                    #expect(Array(moved) == Array(original), "page \(targetPage)")
                } else {
                    #expect(moved.allSatisfy { $0 == 0 }, "page \(targetPage) was written")
                }
            }
        }
    }

    @Test func thePoolLaysOutEveryTensorOfEveryLayerInOrder() throws {
        let pool = try PagedKVStorage(spec: Self.spec, pageCount: 10, pageSize: Self.pageSize)
        let pageBytes = [24 * 4, 16 * 4, 8 * 2].map { $0 * Self.pageSize }
        #expect(pool.buffers.map(\.bytesPerPage) == pageBytes + pageBytes)
        #expect(pool.totalBytes == 10 * Self.pageSize * Self.spec.bytesPerToken)
        #expect(pool.buffer(layer: 1, tensor: 2) == pool.base + 10 * (2 * pageBytes.reduce(0, +) - pageBytes[2]))
        // The attention spec keeps today's byte layout: per layer K then V.
        let kv = try PagedKVStorage(layers: 3, pageCount: 5, pageSize: 16, width: 36, dtype: .bf16)
        for layer in 0..<3 {
            #expect(kv.keys(layer: layer) == kv.base + (2 * layer) * kv.bytesPerLayerBuffer)
            #expect(kv.values(layer: layer) == kv.base + (2 * layer + 1) * kv.bytesPerLayerBuffer)
        }
    }

    /// The hello carries the whole spec; pools whose specs differ refuse each other naming both.
    @Test func theHelloCarriesTheSpecAndAMismatchNamesBoth() throws {
        let layout = KVLayout(pageSize: UInt32(Self.pageSize), spec: Self.spec, model: "probe")
        let hello = TransferMessage.hello(.init(role: "decode", instance: "d", layout: layout, backend: "tcp", nonce: Array(repeating: 1, count: 16)))
        let bytes = TransferCodec.encode(hello)
        let header = try TransferCodec.decodeHeader(Array(bytes.prefix(TransferCodec.headerSize)))
        #expect(try TransferCodec.decode(header, payload: Array(bytes.dropFirst(TransferCodec.headerSize))) == hello)
        var narrower = Self.spec
        narrower.tensors[1].elementsPerToken = 12
        let message = try #require(layout.mismatch(with: KVLayout(pageSize: UInt32(Self.pageSize), spec: narrower, model: "probe")))
        #expect(message.contains("rope_k 16 float32") && message.contains("rope_k 12 float32"), "\(message)")
        #expect(layout.mismatch(with: layout) == nil)
        var other = Self.spec
        other.tensors[0].dtype = .bf16
        #expect(layout.mismatch(with: KVLayout(pageSize: UInt32(Self.pageSize), spec: other, model: "probe"))?.contains("--kv-cache-dtype") == true)
    }

    @Test func tcpGathersAndScattersEveryBuffer() throws {
        let source = try filledSource(), target = try PagedKVStorage(spec: Self.spec, pageCount: 10, pageSize: Self.pageSize)
        var fds: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        let sender = FrameConnection(fd: fds[0], peer: "prefill"), receiver = FrameConnection(fd: fds[1], peer: "decode")
        let sent = Thread { try? KVDataPlane.send(room: 1, firstIndex: 0, source: Self.sourcePages, from: source, over: sender) }
        sent.start()
        let (header, payload) = try receiver.readFrame()
        guard case .kvPages(let frame) = try TransferCodec.decode(header, payload: payload) else {
            Issue.record("expected a kvPages frame")
            return
        }
        #expect(frame.byteCount == UInt64(Self.sourcePages.count * Self.pageSize * Self.spec.bytesPerToken))
        try KVDataPlane.receive(destination: Self.targetPages, into: target, from: receiver)
        expectMoved(from: source, to: target)
    }

    @Test func shmCopiesEveryBuffer() throws {
        let path = SharedPoolFile.newPath()
        defer { unlink(path) }
        let source = try filledSource()
        let target = try PagedKVStorage(spec: Self.spec, pageCount: 10, pageSize: Self.pageSize, sharedMemoryPath: path)
        let mapping = try SharedPoolMapping(path: path, spec: Self.spec, pageSize: Self.pageSize)
        #expect(mapping.pageCount == 10)
        try KVDataPlane.copy(source: Self.sourcePages, destination: Self.targetPages, from: source, to: mapping)
        expectMoved(from: source, to: target)
    }

    @Test func theOneSidedWriterAddressesEveryBufferOfTheDecodesPool() throws {
        let source = try filledSource(), target = try PagedKVStorage(spec: Self.spec, pageCount: 10, pageSize: Self.pageSize)
        let peer = RemotePoolDescriptor(endpoint: [1], storage: target)
        try peer.checkFits(source, engine: "test")
        var fds: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        let connection = FrameConnection(fd: fds[0], peer: "decode"), decodeSide = FrameConnection(fd: fds[1], peer: "prefill")
        // The "engine": copies each range within this process, where the decode's pool also lives.
        let writer = RemotePoolWriter(peer: peer, storage: source, connection: connection) { local, remote, lengths in
            for (l, (r, n)) in zip(local, zip(remote, lengths)) {
                UnsafeMutableRawPointer(bitPattern: UInt(r))!.copyMemory(from: UnsafeRawPointer(bitPattern: UInt(l))!, byteCount: Int(n))
            }
        }
        try writer.write(room: 9, firstIndex: 0, source: Self.sourcePages, destination: Self.targetPages)
        expectMoved(from: source, to: target)
        let (header, payload) = try decodeSide.readFrame()
        #expect(try TransferCodec.decode(header, payload: payload) == .kvWritten(room: 9, firstIndex: 0, pageCount: 5))
        // A destination past the decode's pool is refused before anything is posted.
        #expect(throws: TransferError.self) { try writer.ranges(source: [0], destination: [10]) }
    }
}
