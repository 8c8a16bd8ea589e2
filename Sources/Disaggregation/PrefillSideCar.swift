import Engine
import Foundation
import Kernels
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// The prefill instance's disaggregation side-car: it accepts decode
/// instances' transfer connections, holds each request in the bootstrap
/// queue until its decode half has said where the KV goes, sends the KV
/// after every prefill chunk, then the first token, and keeps the pages
/// (inflight) until the last frame has left.
public final class PrefillSideCar: EngineHooks, @unchecked Sendable {
    let storage: PagedKVStorage
    let layout: KVLayout
    let backend: TransferBackendKind
    let settings: DisaggregationEnvironment
    let logger: Logger
    let listener: FrameListener
    private let workers: TransferWorkers
    /// Wakes the engine thread when a transfer finishes.
    public var wake: @Sendable () -> Void = {}

    private let lock = NSLock()
    /// Requests by engine id.
    private var rooms: [String: Room] = [:]
    /// Decode destinations by room number; may arrive before the request itself.
    private var destinations: [UInt64: Destination] = [:]
    private var nextLinkID = 0

    final class Link: @unchecked Sendable {
        let id: Int
        let connection: FrameConnection
        var sharedPool: SharedPoolMapping?
        var alive = true
        init(id: Int, connection: FrameConnection) {
            self.id = id
            self.connection = connection
        }
    }

    struct Destination {
        let link: Link
        let pages: [Int32]
        let promptLength: Int
        let arrived: Date
    }

    /// Mutable state guarded by the side-car's lock.
    final class Room: @unchecked Sendable {
        let id: String
        let number: UInt64
        let promptCount: Int
        let created = Date()
        var destination: Destination?
        var sentPages = 0
        var pendingJobs = 0
        var ended = false
        /// Set when the transfer (or the decode side) failed.
        var failure: String?
        /// The decode side asked to stop; the engine must abort the request.
        var abortRequested: String?
        init(id: String, number: UInt64, promptCount: Int) {
            self.id = id
            self.number = number
            self.promptCount = promptCount
        }
    }

    /// Listens for decode instances on `host:transferPort` (0: any free port).
    public init(storage: PagedKVStorage, layout: KVLayout, backend: TransferBackendKind, settings: DisaggregationEnvironment,
                host: String, transferPort: Int = 0, logger: Logger) throws {
        self.storage = storage
        self.layout = layout
        self.backend = backend
        self.settings = settings
        self.logger = logger
        listener = try FrameListener(host: host, port: transferPort)
        workers = TransferWorkers(count: min(settings.queueSize, settings.threadPoolSize), name: "pdserve-kv-send")
        let thread = Thread { [weak self] in self?.acceptLoop() }
        thread.name = "pdserve-kv-accept"
        thread.start()
    }

    public var transferPort: Int { listener.port }

    public func stop() {
        listener.close()
        workers.stop()
    }

    // MARK: EngineHooks (engine thread)

    public func admission(for input: GenerateInput) -> DisaggregatedAdmission {
        guard let target = input.bootstrap else { return .prefill }
        lock.withLock { rooms[input.id] = Room(id: input.id, number: target.room, promptCount: input.promptTokens.count) }
        return .prefill
    }

    public func mayPrefill(id: String) -> Bool {
        if backend == .fake { return true }
        return lock.withLock {
            guard let room = rooms[id] else { return true }
            if room.destination == nil, let destination = destinations.removeValue(forKey: room.number) {
                bind(room, to: destination)
            }
            return room.destination != nil && room.failure == nil
        }
    }

    public func computedKV(id: String, pages: [Int32], computed: Int, promptCount: Int) {
        guard backend != .fake else { return }
        lock.withLock {
            guard let room = rooms[id], let destination = room.destination, room.failure == nil else { return }
            let pageSize = Int(layout.pageSize)
            // Only whole pages travel before the prompt ends; the partial last one waits for the final chunk.
            let ready = computed >= promptCount ? (promptCount + pageSize - 1) / pageSize : computed / pageSize
            guard ready > room.sentPages else { return }
            let first = room.sentPages
            let source = Array(pages[first..<ready])
            let target = Array(destination.pages[first..<ready])
            room.sentPages = ready
            enqueue(room, on: destination.link) { [self] in
                try sendPages(room: room.number, firstIndex: first, source: source, destination: target, link: destination.link)
            }
        }
    }

    public func sampledFirstToken(id: String, token: Int, logprob: TokenLogprob?) {
        guard backend != .fake else { return }
        lock.withLock {
            guard let room = rooms[id], let destination = room.destination, room.failure == nil else { return }
            let metadata = TransferMessage.Metadata(
                room: room.number, token: UInt32(token), logprob: logprob?.logprob,
                top: (logprob?.top ?? []).map { .init(token: UInt32($0.token), logprob: $0.logprob) })
            enqueue(room, on: destination.link) {
                try destination.link.connection.send(.metadata(metadata))
                try destination.link.connection.send(.status(room: room.number, success: true, message: ""))
            }
        }
    }

    public func ending(id: String, reason: FinishReason) -> Bool {
        lock.withLock {
            guard let room = rooms[id] else { return false }
            room.ended = true
            if case .abort(let message) = reason, room.failure == nil {
                room.failure = message
                if let link = room.destination?.link {
                    // Queued page jobs see the failure and skip; the decode side learns why.
                    enqueue(room, on: link, evenIfFailed: true) { try link.connection.send(.abort(room: room.number, reason: "prefill aborted: \(message)")) }
                } else {
                    // Its destination may still come: remember to refuse it.
                    destinations[room.number] = nil
                }
            }
            if room.pendingJobs > 0 { return true }
            rooms[id] = nil
            return false
        }
    }

    public func willStep(_ core: EngineCore) {
        var release: [(String, String?)] = []
        var abort: [(String, String)] = []
        lock.withLock {
            let now = Date()
            for room in rooms.values {
                if room.ended {
                    if room.pendingJobs == 0 { release.append((room.id, room.failure)) }
                } else if let reason = room.abortRequested {
                    abort.append((room.id, reason))
                } else if let failure = room.failure {
                    abort.append((room.id, failure))
                } else if room.destination == nil, now.timeIntervalSince(room.created) > settings.bootstrapTimeout {
                    abort.append((room.id, "no decode instance registered room \(room.number) within the \(Int(settings.bootstrapTimeout))s bootstrap timeout"))
                }
            }
            for (id, _) in release { rooms[id] = nil }
            // Destinations whose request never came are refused after the same timeout.
            for (number, destination) in destinations where now.timeIntervalSince(destination.arrived) > settings.bootstrapTimeout {
                destinations[number] = nil
                try? destination.link.connection.send(.status(room: number, success: false, message: "the prefill instance never received a request for room \(number)"))
            }
        }
        for (id, failure) in release { core.releaseHeld(id: id, failure: failure) }
        for (id, reason) in abort { core.abort(id: id, message: reason) }
    }

    // MARK: transfer jobs

    /// Queues a job on the link's worker; the room stays held until it ran. Call with `lock` held.
    private func enqueue(_ room: Room, on link: Link, evenIfFailed: Bool = false, _ job: @escaping () throws -> Void) {
        room.pendingJobs += 1
        workers.submit(shard: link.id) { [self] in
            let skip = lock.withLock { room.failure != nil && !evenIfFailed } || !link.alive
            var failure: String?
            if !skip {
                do { try job() } catch { failure = "\(error)" }
            }
            lock.withLock {
                room.pendingJobs -= 1
                if let failure {
                    room.failure = room.failure ?? "KV transfer to decode failed: \(failure)"
                    linkFailed(link, reason: failure)
                }
            }
            wake()
        }
    }

    /// Page bytes for one chunk: over the socket (tcp) or straight into the decode pool (shm).
    private func sendPages(room: UInt64, firstIndex: Int, source: [Int32], destination: [Int32], link: Link) throws {
        switch backend {
        case .tcp:
            try KVDataPlane.send(room: room, firstIndex: firstIndex, source: source, from: storage, over: link.connection)
        case .shm:
            guard let pool = link.sharedPool else { throw TransferError("decode did not share its KV pool") }
            try KVDataPlane.copy(source: source, destination: destination, from: storage, to: pool)
            try link.connection.send(.kvWritten(room: room, firstIndex: UInt32(firstIndex), pageCount: UInt32(source.count)))
        case .fake:
            break
        }
    }

    // MARK: connections

    private func acceptLoop() {
        while let connection = listener.accept() {
            let link = lock.withLock { () -> Link in
                nextLinkID += 1
                return Link(id: nextLinkID, connection: connection)
            }
            let thread = Thread { [weak self] in self?.serve(link) }
            thread.name = "pdserve-kv-link-\(link.id)"
            thread.start()
        }
    }

    /// Reads one decode instance's frames until the connection ends.
    private func serve(_ link: Link) {
        defer {
            link.connection.close()
            lock.withLock { linkFailed(link, reason: "decode instance disconnected") }
            wake()
        }
        do {
            let (header, payload) = try link.connection.readFrame()
            guard case .hello(let hello) = try TransferCodec.decode(header, payload: payload) else {
                throw TransferProtocolError("the first frame must be hello")
            }
            if let mismatch = layout.mismatch(with: hello.layout) {
                try? link.connection.send(.error(message: "KV layouts do not match: \(mismatch)"))
                logger.warning("refused decode instance \(hello.instance): \(mismatch)")
                return
            }
            if backend == .shm {
                guard let path = hello.sharedMemoryPath else { throw TransferProtocolError("the shm backend needs the decode pool's shared-memory path") }
                link.sharedPool = try SharedPoolMapping(path: path, layout: layout)
            }
            try link.connection.send(.hello(.init(role: "prefill", instance: "prefill", layout: layout)))
            while true {
                let (header, payload) = try link.connection.readFrame()
                guard TransferCodec.isKnown(header.type) else {
                    logger.warning("dropped unknown transfer frame type \(header.type) from \(link.connection.peer)")
                    try link.connection.discard(header.payloadLength)
                    continue
                }
                handle(try TransferCodec.decode(header, payload: payload), from: link)
            }
        } catch {
            logger.info("transfer connection \(link.id) closed: \(error)")
        }
    }

    private func handle(_ message: TransferMessage, from link: Link) {
        switch message {
        case .transferRequest(let request):
            lock.withLock {
                let destination = Destination(link: link, pages: request.pages.map { Int32(bitPattern: $0) },
                                              promptLength: Int(request.promptLength), arrived: Date())
                if let room = rooms.values.first(where: { $0.number == request.room && !$0.ended }) {
                    guard room.destination == nil else {
                        try? link.connection.send(.status(room: request.room, success: false, message: "room \(request.room) already has a destination"))
                        return
                    }
                    bind(room, to: destination)
                } else {
                    destinations[request.room] = destination
                }
            }
            wake()
        case let .abort(number, reason):
            lock.withLock {
                destinations[number] = nil
                for room in rooms.values where room.number == number && !room.ended { room.abortRequested = "decode side aborted: \(reason)" }
            }
            try? link.connection.send(.abortAck(room: number))
            wake()
        case .heartbeat:
            break
        default:
            logger.warning("dropped unexpected \(message) from decode link \(link.id)")
        }
    }

    /// Attaches a destination, checking it fits the prompt. Call with `lock` held.
    private func bind(_ room: Room, to destination: Destination) {
        let pageSize = Int(layout.pageSize)
        let needed = (room.promptCount + pageSize - 1) / pageSize
        guard destination.promptLength == room.promptCount, destination.pages.count == needed else {
            room.failure = "decode's destination for room \(room.number) does not fit: \(destination.pages.count) pages for \(destination.promptLength) tokens, the prompt has \(room.promptCount) tokens (\(needed) pages)"
            try? destination.link.connection.send(.status(room: room.number, success: false, message: room.failure!))
            return
        }
        room.destination = destination
    }

    /// Fails every room bound to a dead link. Call with `lock` held.
    private func linkFailed(_ link: Link, reason: String) {
        link.alive = false
        for room in rooms.values where room.destination?.link === link && room.failure == nil {
            room.failure = "KV transfer failed: \(reason)"
        }
        for (number, destination) in destinations where destination.link === link { destinations[number] = nil }
    }
}
