import Engine
import Foundation
import Kernels
import Logging

/// The decode instance's disaggregation side-car. Each request is parked
/// while it (1) waits for pages (prealloc queue: admitted only while
/// running requests keep their headroom), (2) looks up its prefill through
/// the bootstrap server and sends it the destination (room, page ids), and
/// (3) receives the KV straight into those pages (transfer queue). On
/// success it joins the running batch with the first token the prefill
/// sampled; on failure or timeout it ends with a clear error and its pages
/// are freed. Heartbeats watch every prefill it depends on.
public final class DecodeSideCar: EngineHooks, @unchecked Sendable {
    let storage: PagedKVStorage
    let layout: KVLayout
    let backend: TransferBackendKind
    let settings: DisaggregationEnvironment
    let logger: Logger
    /// Wakes the engine thread when a transfer changes state.
    public var wake: @Sendable () -> Void = {}

    private let lock = NSLock()
    private var rooms: [String: Room] = [:]
    /// Rooms waiting for pages, in arrival order.
    private var preallocQueue: [Room] = []
    /// One transfer connection per prefill bootstrap address.
    private var links: [String: Link] = [:]
    private let connector = DispatchQueue(label: "pdserve-kv-connect", attributes: .concurrent)

    enum State: Equatable {
        case waitingForPages, bootstrapping, transferring, success, failed
    }

    /// Mutable state guarded by the side-car's lock.
    final class Room: @unchecked Sendable {
        let id: String
        let number: UInt64
        let target: BootstrapTarget
        let promptCount: Int
        let created = Date()
        var state = State.waitingForPages
        var pages: [Int32] = []
        var receivedPages = 0
        var metadata: TransferMessage.Metadata?
        var failure: String?
        var link: Link?
        /// The link's reader is writing page bytes into this room's pages right now.
        var writing = false
        /// The request ended while bytes might still land in its pages.
        var cancelled = false
        init(id: String, number: UInt64, target: BootstrapTarget, promptCount: Int) {
            self.id = id
            self.number = number
            self.target = target
            self.promptCount = promptCount
        }
    }

    final class Link: @unchecked Sendable {
        let key: String
        let bootstrapHost: String
        let bootstrapPort: Int
        let connection: FrameConnection
        var alive = true
        var rooms: [UInt64: Room] = [:]
        init(key: String, host: String, port: Int, connection: FrameConnection) {
            self.key = key
            bootstrapHost = host
            bootstrapPort = port
            self.connection = connection
        }
    }

    public init(storage: PagedKVStorage, layout: KVLayout, backend: TransferBackendKind, settings: DisaggregationEnvironment, logger: Logger) {
        self.storage = storage
        self.layout = layout
        self.backend = backend
        self.settings = settings
        self.logger = logger
    }

    /// Default bootstrap port when the router sends `bootstrap_port: null`.
    public static let defaultBootstrapPort = 8998

    // MARK: EngineHooks (engine thread)

    public func admission(for input: GenerateInput) -> DisaggregatedAdmission {
        guard let target = input.bootstrap else { return .prefill }
        let room = Room(id: input.id, number: target.room, target: target, promptCount: input.promptTokens.count)
        lock.withLock {
            rooms[input.id] = room
            preallocQueue.append(room)
        }
        return .park
    }

    public func mayPrefill(id: String) -> Bool { true }
    public func computedKV(id: String, pages: [Int32], computed: Int, promptCount: Int) {}
    public func sampledFirstToken(id: String, token: Int, logprob: TokenLogprob?) {}

    public func ending(id: String, reason: FinishReason) -> Bool {
        lock.withLock {
            guard let room = rooms[id] else { return false }
            room.cancelled = true
            preallocQueue.removeAll { $0 === room }
            if let link = room.link, room.state == .bootstrapping || room.state == .transferring {
                let number = room.number
                connector.async { try? link.connection.send(.abort(room: number, reason: "decode request ended: \(reason.name)")) }
            }
            if room.writing { return true }
            forget(room)
            return false
        }
    }

    public func willStep(_ core: EngineCore) {
        var activate: [(String, TransferMessage.Metadata?, Int)] = []
        var abandon: [(String, String)] = []
        var release: [String] = []
        var connect: [Room] = []
        lock.withLock {
            // Prealloc queue: first come, first served, while pages last.
            while let room = preallocQueue.first {
                guard let pages = core.preallocate(id: room.id) else { break }
                preallocQueue.removeFirst()
                room.pages = pages
                room.state = .bootstrapping
                connect.append(room)
            }
            let now = Date()
            for room in rooms.values {
                if room.cancelled {
                    if !room.writing { release.append(room.id) }
                    continue
                }
                switch room.state {
                case .success:
                    activate.append((room.id, room.metadata, room.promptCount))
                case .failed:
                    abandon.append((room.id, room.failure ?? "KV transfer failed"))
                case .waitingForPages, .bootstrapping, .transferring:
                    if now.timeIntervalSince(room.created) > settings.waitingTimeout {
                        fail(room, "the KV for room \(room.number) did not arrive within the \(Int(settings.waitingTimeout))s waiting timeout")
                        abandon.append((room.id, room.failure!))
                    }
                }
            }
            for id in activate.map(\.0) + abandon.map(\.0) + release { if let room = rooms[id] { forget(room) } }
        }
        for (id, metadata, _) in activate {
            let logprob = metadata.flatMap { m in
                m.logprob.map { TokenLogprob(token: Int(m.token), logprob: $0, top: m.top.map { (token: Int($0.token), logprob: $0.logprob) }) }
            }
            core.activate(id: id, firstToken: Int(metadata?.token ?? 0), logprob: logprob)
        }
        for (id, message) in abandon { core.abandon(id: id, message: message) }
        for id in release { core.releaseHeld(id: id) }
        for room in connect { start(room) }
    }

    /// Drops a room from every table. Call with `lock` held.
    private func forget(_ room: Room) {
        rooms[room.id] = nil
        room.link?.rooms[room.number] = nil
    }

    /// Marks a room failed. Call with `lock` held.
    private func fail(_ room: Room, _ message: String) {
        guard room.state != .success, room.state != .failed else { return }
        room.state = .failed
        room.failure = message
    }

    // MARK: bootstrap and connection (off the engine thread)

    /// Resolves the room's prefill and sends it the destination.
    private func start(_ room: Room) {
        if backend == .fake {
            // Nothing moves: the request decodes from whatever its pages hold.
            lock.withLock {
                room.metadata = .init(room: room.number, token: 0, logprob: nil, top: [])
                room.state = .success
            }
            wake()
            return
        }
        connector.async { [self] in
            do {
                let link = try link(for: room.target)
                let pages = room.pages.map { UInt32(bitPattern: $0) }
                let proceed = lock.withLock { () -> Bool in
                    guard !room.cancelled, room.state == .bootstrapping, link.alive else { return false }
                    room.link = link
                    link.rooms[room.number] = room
                    room.state = .transferring
                    return true
                }
                guard proceed else { return }
                try link.connection.send(.transferRequest(.init(room: room.number, pages: pages, promptLength: UInt32(room.promptCount))))
            } catch {
                lock.withLock { fail(room, "\(error)") }
            }
            wake()
        }
    }

    /// The open link to a prefill, connecting (route lookup, hello) on first use.
    private func link(for target: BootstrapTarget) throws -> Link {
        let port = target.port ?? Self.defaultBootstrapPort
        let key = "\(target.host):\(port)"
        if let link = lock.withLock({ links[key] }), link.alive { return link }
        let route = try lookUpRoute(host: target.host, port: port)
        if let mismatch = layout.mismatch(with: route.layout) {
            throw TransferError("prefill at \(key) cannot send to this decode instance: \(mismatch)")
        }
        let connection = try FrameConnection.connect(host: route.rankIP, port: route.rankPort, timeout: 10)
        try connection.send(.hello(.init(role: "decode", instance: "decode", layout: layout, sharedMemoryPath: storage.sharedMemoryPath)))
        let (header, payload) = try connection.readFrame()
        switch try TransferCodec.decode(header, payload: payload) {
        case .hello(let hello):
            if let mismatch = layout.mismatch(with: hello.layout) { throw TransferError("prefill at \(key): \(mismatch)") }
        case .error(let message):
            throw TransferError("prefill at \(key) refused the connection: \(message)")
        default:
            throw TransferError("prefill at \(key) answered hello with another frame")
        }
        let link = Link(key: key, host: target.host, port: port, connection: connection)
        let winner = lock.withLock { () -> Link in
            if let existing = links[key], existing.alive { return existing }
            links[key] = link
            return link
        }
        if winner !== link {
            connection.close()
            return winner
        }
        let reader = Thread { [weak self] in self?.read(link) }
        reader.name = "pdserve-kv-recv"
        reader.start()
        let heartbeat = Thread { [weak self] in self?.heartbeat(link) }
        heartbeat.name = "pdserve-kv-heartbeat"
        heartbeat.start()
        return link
    }

    private func lookUpRoute(host: String, port: Int) throws -> PrefillRoute {
        let reply: SimpleHTTP.Reply
        do {
            reply = try SimpleHTTP.get(host: host, port: port, path: "/route?engine_rank=0&target_dp_group=0", timeout: 10)
        } catch {
            throw TransferError("prefill bootstrap server \(host):\(port) is unreachable: \(error)")
        }
        guard reply.status == 200, let object = try? JSONSerialization.jsonObject(with: reply.body) as? [String: Any],
              let route = PrefillRoute(json: object) else {
            throw TransferError("prefill bootstrap server \(host):\(port) answered \(reply.status) to GET /route")
        }
        return route
    }

    // MARK: receiving

    /// Reads a prefill's frames, writing page bytes straight into destination pages.
    private func read(_ link: Link) {
        var reason = "prefill at \(link.key) closed the transfer connection"
        do {
            while true {
                let (header, payload) = try link.connection.readFrame()
                guard TransferCodec.isKnown(header.type) else {
                    logger.warning("dropped unknown transfer frame type \(header.type) from \(link.key)")
                    try link.connection.discard(header.payloadLength)
                    continue
                }
                let message = try TransferCodec.decode(header, payload: payload)
                if case .kvPages(let pages) = message {
                    try receivePages(pages, on: link)
                } else {
                    handle(message, on: link)
                }
            }
        } catch {
            reason = "transfer connection to prefill \(link.key) lost: \(error)"
        }
        drop(link, reason: reason)
    }

    private func receivePages(_ frame: TransferMessage.KVPages, on link: Link) throws {
        let first = Int(frame.firstIndex), count = Int(frame.pageCount)
        // Only a live room on this link, inside its own pages, may be written.
        let target = lock.withLock { () -> Room? in
            guard let room = link.rooms[frame.room], room.state == .transferring, !room.cancelled else { return nil }
            guard count > 0, first + count <= room.pages.count, frame.byteCount == KVDataPlane.byteCount(pages: count, storage: storage) else {
                fail(room, "prefill sent a malformed KV frame for room \(frame.room) (pages \(first)..<\(first + count) of \(room.pages.count), \(frame.byteCount) bytes)")
                return nil
            }
            room.writing = true
            return room
        }
        guard let room = target else {
            logger.warning("dropped KV frame for room \(frame.room) that this instance is not receiving")
            try link.connection.discard(frame.byteCount)
            wake()
            return
        }
        defer {
            lock.withLock {
                room.writing = false
                if !room.cancelled { room.receivedPages += count }
            }
            wake()
        }
        try KVDataPlane.receive(destination: Array(room.pages[first..<first + count]), into: storage, from: link.connection)
    }

    private func handle(_ message: TransferMessage, on link: Link) {
        lock.withLock {
            guard let number = message.room else { return }
            guard let room = link.rooms[number], !room.cancelled else {
                if case .abortAck = message { return }
                logger.warning("dropped \(message) for unknown room \(number)")
                return
            }
            switch message {
            case let .kvWritten(_, first, count):
                if Int(first) + Int(count) <= room.pages.count { room.receivedPages += Int(count) }
                else { fail(room, "prefill reported pages outside room \(number)") }
            case .metadata(let metadata):
                room.metadata = metadata
            case let .status(_, success, text):
                if success {
                    if room.receivedPages >= room.pages.count, room.metadata != nil {
                        room.state = .success
                    } else {
                        fail(room, "prefill reported success for room \(number) with \(room.receivedPages)/\(room.pages.count) pages and \(room.metadata == nil ? "no" : "its") first token")
                    }
                } else {
                    fail(room, "prefill failed room \(number): \(text)")
                }
            case let .abort(_, reason):
                fail(room, reason)
            default:
                logger.warning("dropped unexpected \(message) from prefill \(link.key)")
            }
        }
        wake()
    }

    /// Fails every room that depends on a dead prefill.
    private func drop(_ link: Link, reason: String) {
        link.connection.close()
        lock.withLock {
            link.alive = false
            if links[link.key] === link { links[link.key] = nil }
            for room in link.rooms.values { fail(room, reason) }
        }
        wake()
    }

    /// Checks the prefill's bootstrap server every interval; after too many
    /// misses the prefill is declared dead and its rooms fail at once.
    private func heartbeat(_ link: Link) {
        var misses = 0
        while lock.withLock({ link.alive }) {
            Thread.sleep(forTimeInterval: settings.heartbeatInterval)
            guard lock.withLock({ link.alive }) else { return }
            let healthy = (try? SimpleHTTP.get(host: link.bootstrapHost, port: link.bootstrapPort, path: "/health",
                                               timeout: settings.heartbeatInterval))?.status == 200
            misses = healthy ? 0 : misses + 1
            if misses >= settings.heartbeatMaxFailure {
                drop(link, reason: "prefill at \(link.key) missed \(misses) heartbeats")
                return
            }
        }
    }
}
