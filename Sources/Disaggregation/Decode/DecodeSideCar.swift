import Engine
import Foundation
import Kernels
import Logging
import Profiling

/// The decode instance's disaggregation side-car, polled top-down by the
/// engine each step through SGLang's named queues:
///
/// 1. **prealloc queue** — rooms waiting, in arrival order, for pages for
///    their whole prompt (keeping one page of headroom per running request).
/// 2. **transfer queue** — rooms whose destination went to the prefill:
///    page bytes land straight in their pages (tcp: this process's reader;
///    shm: the prefill itself), then the first token and a status arrive.
/// 3. **running** (the engine's) — a room whose KV arrived joins the batch
///    when `--max-running-requests` allows, decoding from the prefill's first token.
///
/// A room ends through one path (`ending`): it tells the prefill when the
/// end was not a success, and its pages stay leased (`PageCustody.leased`)
/// until nothing can write into them any more — the reader is out of them
/// (local writers) or the prefill confirmed or died (remote writers).
public final class DecodeSideCar: EngineHooks, @unchecked Sendable {
    let storage: PagedKVStorage
    let layout: KVLayout
    let backend: any TransferBackend
    let settings: DisaggregationEnvironment
    let clock: any MonotonicClock
    let vocabSize: Int
    let logger: Logger
    /// The engine's profiler: KV receives and room phases become spans while it records.
    let profiler: Profiler
    /// With a key, KV lands only from prefills that prove it, and bootstrap answers must be signed with it.
    let authKey: ChannelKey?
    /// Wakes the engine thread when a room made progress.
    public var wake: @Sendable () -> Void = {}

    private let lock = NSLock()
    /// Every room the engine has not been told is over, and ended rooms whose lease is still out.
    private var rooms: [String: DecodeRoom] = [:]
    private var preallocQueue: [DecodeRoom] = []
    private var links: [String: PrefillLink] = [:]
    /// Route lookups and connects: blocking, so off the engine thread.
    private let connector = DispatchQueue(label: "pdserve-kv-connect")
    private var stopped = false

    public init(storage: PagedKVStorage, layout: KVLayout, backend: any TransferBackend, settings: DisaggregationEnvironment,
                vocabSize: Int, authKey: ChannelKey? = nil, clock: any MonotonicClock = SystemMonotonicClock(),
                profiler: Profiler = Profiler(), logger: Logger) {
        self.profiler = profiler
        self.storage = storage
        self.authKey = authKey
        self.layout = layout
        self.backend = backend
        self.settings = settings
        self.vocabSize = vocabSize
        self.clock = clock
        self.logger = logger
    }

    /// Default bootstrap port when the router sends `bootstrap_port: null`.
    public static let defaultBootstrapPort = 8998

    public func stop() {
        let open = lock.withLock { () -> [PrefillLink] in
            stopped = true
            return Array(links.values)
        }
        for link in open { link.connection.close() }
        backend.shutdown()
    }

    // MARK: EngineHooks (engine thread; no I/O here)

    public var generatesFirstTokenOnly: Bool { false }

    public func admission(for input: GenerateInput) -> DisaggregatedAdmission {
        guard let target = input.bootstrap else { return .prefill }
        let room = DecodeRoom(id: input.id, number: target.room, target: target, promptCount: input.promptTokens.count, clock: clock)
        lock.withLock {
            rooms[input.id] = room
            preallocQueue.append(room)
        }
        return .park
    }

    public func mayPrefill(id: String) -> Bool { true }
    public func computedKV(id: String, pages: [Int32], computed: Int, promptCount: Int) {}
    public func sampledFirstToken(id: String, token: Int, logprob: TokenLogprob?) {}

    /// The one end path of a decode room; its phases travel with its activation (`EngineCore.activate`).
    public func ending(id: String, reason: FinishReason) -> RoomEnding {
        lock.withLock {
            guard let room = rooms[id] else { return RoomEnding(custody: .engine) }
            room.ended = true
            preallocQueue.removeAll { $0 === room }
            if !room.state.isTerminal {
                room.fail(reason.failureForRoom(room.number))
            }
            if case .failed(let failure) = room.state, room.destinationSent, !room.peerDone, let link = room.link {
                let number = room.number
                link.sendQueue.async { try? link.connection.send(.abort(room: number, reason: "decode: \(failure.message)")) }
            }
            if room.pages.isEmpty || leaseEnded(room) {
                forget(room)
                return RoomEnding(custody: .engine)
            }
            return RoomEnding(custody: .leased)
        }
    }

    public func willStep(_ core: EngineCore) {
        var connect: [DecodeRoom] = []
        var activate: [(String, TransferMessage.Metadata, RequestPhases)] = []
        var abandon: [(String, RequestFailure)] = []
        var returned: [String] = []
        lock.withLock {
            // 1. Prealloc queue: first come, first served, while pages last.
            while let room = preallocQueue.first {
                guard let pages = core.preallocate(id: room.id) else { break }
                preallocQueue.removeFirst()
                room.assign(pages: pages)
                connect.append(room)
            }
            // 2. Transfer queue, in arrival order so activation is fair.
            let now = clock.now()
            var activations = 0
            for room in rooms.values.sorted(by: { $0.created < $1.created }) {
                if room.ended {
                    if leaseEnded(room) { returned.append(room.id); forget(room) }
                    continue
                }
                switch room.state {
                case .success:
                    // 3. Running: only as many as --max-running-requests allows.
                    if core.runningCount + activations < core.options.maxRunningRequests, let metadata = room.metadata {
                        activations += 1
                        activate.append((room.id, metadata, room.phases))
                        forget(room)
                    }
                case .failed(let failure):
                    abandon.append((room.id, failure))
                case .bootstrapping, .waitingForInput, .transferring:
                    if now - room.created > settings.waitingTimeout {
                        let failure = RequestFailure(.timeout, "the KV for room \(room.number) did not arrive within the \(secondsText(settings.waitingTimeout)) waiting timeout")
                        room.fail(failure)
                        abandon.append((room.id, failure))
                    }
                }
            }
        }
        for (id, metadata, phases) in activate {
            let logprob = metadata.logprob.map { value in
                TokenLogprob(token: Int(metadata.token), logprob: value, top: metadata.top.map { (token: Int($0.token), logprob: $0.logprob) })
            }
            core.activate(id: id, firstToken: Int(metadata.token), logprob: logprob, phases: phases)
        }
        // Each abandoned request comes back through `ending`, which decides its pages' custody.
        for (id, failure) in abandon { core.abandon(id: id, failure: failure) }
        for id in returned { core.returnLease(id: id) }
        for room in connect { start(room) }
    }

    /// Rooms in the prealloc queue, and rooms whose pages are leased after they ended.
    public var preallocQueueCount: Int { lock.withLock { preallocQueue.count } }
    public var leasedRoomCount: Int { lock.withLock { rooms.values.filter(\.ended).count } }
    /// Where the room of request `id` stands (nil once it is gone); for tests that wait on a state.
    func state(of id: String) -> RoomState? { lock.withLock { rooms[id]?.state } }

    // MARK: bookkeeping (call with `lock` held)

    /// Whether nothing can write into an ended room's pages any more.
    private func leaseEnded(_ room: DecodeRoom) -> Bool {
        guard room.destinationSent, let link = room.link else { return true }
        switch link.lander.writer {
        case .local: return room.landing == 0
        case .remote: return room.peerDone || !link.lander.peerMayStillWrite()
        }
    }

    private func forget(_ room: DecodeRoom) {
        room.trace(into: profiler.recorder)
        rooms[room.id] = nil
        if room.link?.rooms[room.number] === room { room.link?.rooms[room.number] = nil }
    }

    // MARK: bootstrap and connection (connector queue)

    /// Resolves the room's prefill and sends it the destination.
    private func start(_ room: DecodeRoom) {
        if backend.movesNothing {
            // Nothing moves: the request decodes from whatever its pages hold.
            lock.withLock {
                room.metadata = .init(room: room.number, token: 0, logprob: nil, top: [])
                room.move(to: .success)
            }
            wake()
            return
        }
        connector.async { [self] in
            do {
                let link = try link(for: room.target)
                let pages = room.pages.map { UInt32(bitPattern: $0) }
                let proceed = lock.withLock { () -> Bool in
                    guard !room.ended, !room.state.isTerminal, link.alive else { return false }
                    guard link.rooms[room.number] == nil else {
                        room.fail(RequestFailure(.invalidPeerData, "bootstrap_room \(room.number) is already in use with the prefill at \(link.key)"))
                        return false
                    }
                    room.link = link
                    link.rooms[room.number] = room
                    room.destinationSent = true
                    room.move(to: .waitingForInput)
                    return true
                }
                if proceed {
                    let request = TransferMessage.TransferRequest(room: room.number, pages: pages, promptLength: UInt32(room.promptCount))
                    link.sendQueue.async { [self] in
                        do { try link.connection.send(.transferRequest(request)) } catch { drop(link, reason: "cannot send to prefill \(link.key): \(error)") }
                    }
                }
            } catch let failure as RequestFailure {
                lock.withLock { room.fail(failure) }
            } catch {
                lock.withLock { room.fail(RequestFailure(.peerLost, "\(error)")) }
            }
            wake()
        }
    }

    /// The open link to a prefill, connecting (route lookup, hello) on first use.
    private func link(for target: BootstrapTarget) throws -> PrefillLink {
        let port = target.port ?? Self.defaultBootstrapPort
        let key = target.host.contains(":") ? "[\(target.host)]:\(port)" : "\(target.host):\(port)"
        if let link = lock.withLock({ links[key] }), link.alive { return link }
        let route = try lookUpRoute(host: target.host, port: port)
        if let mismatch = layout.mismatch(with: route.layout) {
            throw RequestFailure(.invalidPeerData, "prefill at \(key) cannot send to this decode instance: \(mismatch)")
        }
        guard route.backend == backend.name else {
            throw RequestFailure(.invalidPeerData, "prefill at \(key) uses the \(route.backend) transfer backend, this decode instance \(backend.name)")
        }
        let connection = try FrameConnection.connect(host: route.rankIP, port: route.rankPort, timeout: 10)
        let lander: any KVPageLander
        let session: UInt64
        do {
            connection.setReceiveTimeout(10)
            let challenge: [UInt8]
            do { challenge = try TransferHandshake.readChallenge(connection) } catch let error as TransferProtocolError {
                throw RequestFailure(.invalidPeerData, "prefill at \(key) \(error)")
            }
            let mine = TransferHandshake.decodeHello(.init(role: "decode", instance: "decode", layout: layout, backend: backend.name, descriptor: backend.localDescriptor),
                                                     challenge: challenge, key: authKey)
            try connection.send(.hello(mine))
            let (header, payload) = try connection.readFrame(maxPayload: TransferHandshake.maxFrameBytes)
            switch try TransferCodec.decode(header, payload: payload) {
            case .hello(let hello) where hello.role == "prefill":
                if let refusal = TransferHandshake.refusal(ofPrefill: hello, challenge: challenge, decodeNonce: mine.nonce, key: authKey) {
                    throw RequestFailure(.invalidPeerData, "prefill at \(key): \(refusal)")
                }
                if let mismatch = layout.mismatch(with: hello.layout) { throw RequestFailure(.invalidPeerData, "prefill at \(key): \(mismatch)") }
                lander = try backend.makeLander(peerDescriptor: hello.descriptor, connection: connection)
                session = hello.session
                TransferHandshake.seal(connection, key: authKey, challenge: challenge, decodeNonce: mine.nonce, side: .decode)
            case .error(let message):
                throw RequestFailure(.invalidPeerData, "prefill at \(key) refused the connection: \(message)")
            default:
                throw RequestFailure(.invalidPeerData, "prefill at \(key) answered hello with another frame")
            }
            // The reader waits as long as the prefill takes; heartbeats watch its liveness.
            connection.setReceiveTimeout(0)
        } catch {
            connection.close()
            throw error
        }
        let link = PrefillLink(key: key, host: target.host, port: port, connection: connection, lander: lander, session: session)
        let winner = lock.withLock { () -> PrefillLink? in
            guard !stopped else { return nil }
            if let existing = links[key], existing.alive { return existing }
            links[key] = link
            return link
        }
        guard let winner else {
            connection.close()
            throw RequestFailure(.peerLost, "the decode instance is shutting down")
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
            reply = try BootstrapAuth.get(host: host, port: port, path: "/route?engine_rank=0&target_dp_group=0", timeout: 10, key: authKey)
        } catch let refused as BootstrapAuth.Refused {
            throw RequestFailure(.invalidPeerData, refused.description)
        } catch {
            throw RequestFailure(.peerLost, "prefill bootstrap server \(host):\(port) is unreachable: \(error)")
        }
        guard reply.status == 200, let object = try? JSONSerialization.jsonObject(with: reply.body) as? [String: Any],
              let route = PrefillRoute(json: object) else {
            throw RequestFailure(.invalidPeerData, "\(host):\(port) is not a prefill bootstrap server (GET /route answered \(reply.status))")
        }
        return route
    }

    // MARK: receiving (reader thread)

    /// Reads a prefill's frames, landing page bytes straight in destination pages.
    private func read(_ link: PrefillLink) {
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
                if case .kvPages(let frame) = message {
                    try land(frame, on: link)
                } else {
                    handle(message, on: link)
                }
            }
        } catch {
            reason = "transfer connection to prefill \(link.key) lost: \(error)"
        }
        drop(link, reason: reason)
    }

    private func land(_ frame: TransferMessage.KVPages, on link: PrefillLink) throws {
        let first = Int(frame.firstIndex), count = Int(frame.pageCount)
        // Only a live room on this link, inside its own pages, with the layout's byte count, may be written.
        let target = lock.withLock { () -> (DecodeRoom, [Int32])? in
            guard let room = link.rooms[frame.room], !room.ended, !room.state.isTerminal else { return nil }
            guard link.lander.writer == .local, room.accepts(first: first, count: count),
                  frame.byteCount == KVDataPlane.byteCount(pages: count, storage: storage) else {
                room.fail(RequestFailure(.invalidPeerData, "prefill sent a malformed KV frame for room \(frame.room) (pages \(first)..<\(first + count) of \(room.pages.count), \(frame.byteCount) bytes)"))
                return nil
            }
            room.landing += 1
            return (room, Array(room.pages[first..<first + count]))
        }
        guard let (room, destination) = target else {
            logger.warning("dropped KV frame for room \(frame.room) that this instance is not receiving")
            try link.connection.discard(frame.byteCount)
            wake()
            return
        }
        defer {
            lock.withLock {
                room.landing -= 1
                if !room.ended { room.markLanded(first: first, count: count) }
            }
            wake()
        }
        try profiler.measure("kv_recv", category: "transfer",
                             args: ["bootstrap_room": .uint(frame.room), "first_page": .int(first), "pages": .int(count), "bytes": .int(Int(frame.byteCount))]) {
            try link.lander.land(frame, into: destination, from: link.connection)
        }
    }

    private func handle(_ message: TransferMessage, on link: PrefillLink) {
        lock.withLock {
            guard let number = message.room else {
                if case .error(let text) = message { logger.warning("prefill \(link.key): \(text)") }
                return
            }
            guard let room = link.rooms[number] else {
                if case .abortAck = message { return }
                logger.warning("dropped \(message) for unknown room \(number)")
                return
            }
            switch message {
            case let .kvWritten(_, first, count):
                guard link.lander.writer == .remote, room.accepts(first: Int(first), count: Int(count)) else {
                    room.fail(RequestFailure(.invalidPeerData, "prefill reported pages \(first)..<\(first + count) outside room \(number)'s \(room.pages.count)"))
                    return
                }
                room.markLanded(first: Int(first), count: Int(count))
                // One-sided backends: the prefill wrote these pages itself; this is when the decode heard.
                profiler.recorder?.instant("kv_written", category: "transfer",
                                           args: ["bootstrap_room": .uint(number), "first_page": .int(Int(first)), "pages": .int(Int(count))])
            case .metadata(let metadata):
                if let bad = ([metadata.token] + metadata.top.map(\.token)).first(where: { Int($0) >= vocabSize }) {
                    room.fail(RequestFailure(.invalidPeerData, "prefill sent token id \(bad) for room \(number), outside the vocabulary (0..<\(vocabSize))"))
                } else {
                    room.metadata = metadata
                }
            case let .status(_, success, text):
                room.peerDone = true
                if !success {
                    room.fail(RequestFailure(.transfer, "prefill failed room \(number): \(text)"))
                } else if room.allLanded, room.metadata != nil {
                    room.move(to: .success)
                } else {
                    room.fail(RequestFailure(.invalidPeerData, "prefill reported success for room \(number) with \(room.landedCount)/\(room.pages.count) pages and \(room.metadata == nil ? "no" : "its") first token"))
                }
            case let .abort(_, reason):
                room.peerDone = true
                room.fail(RequestFailure(.transfer, reason))
            case .abortAck:
                room.peerDone = true
            default:
                logger.warning("dropped unexpected \(message) from prefill \(link.key)")
            }
        }
        wake()
    }

    /// Fails every room that depends on a dead prefill.
    private func drop(_ link: PrefillLink, reason: String) {
        // Rooms fail with the first reason; closing wakes the reader, whose own drop then finds nothing to do.
        let first = lock.withLock { () -> Bool in
            guard link.alive else { return false }
            link.alive = false
            if links[link.key] === link { links[link.key] = nil }
            for room in link.rooms.values where !room.state.isTerminal { room.fail(RequestFailure(.peerLost, reason)) }
            return true
        }
        link.connection.close()
        if first, link.lander.writer == .remote {
            let watcher = Thread { [weak self] in self?.awaitDrain(link) }
            watcher.name = "pdserve-kv-drain"
            watcher.start()
        }
        wake()
    }

    /// Remote writers: after a lost connection, the rooms' pages stay leased
    /// until the prefill says the session's last job ran (its bootstrap
    /// server's `/drained`), or its process is gone.
    private func awaitDrain(_ link: PrefillLink) {
        let interval = min(settings.heartbeatInterval, 0.2)
        while lock.withLock({ !stopped && link.rooms.values.contains { !$0.peerDone } }), link.lander.peerMayStillWrite() {
            // Signed with a key: a forged "drained" would free pages the prefill may still write.
            if let reply = try? BootstrapAuth.get(host: link.bootstrapHost, port: link.bootstrapPort, path: "/drained?session=\(link.session)",
                                                  timeout: 2, key: authKey),
               reply.status == 200, let answer = try? JSONSerialization.jsonObject(with: reply.body) as? [String: Any],
               answer["drained"] as? Bool == true {
                lock.withLock { for room in link.rooms.values { room.peerDone = true } }
                break
            }
            Thread.sleep(forTimeInterval: interval)
        }
        wake()
    }

    /// Checks the prefill's bootstrap server every interval; after too many
    /// misses the prefill is declared dead and its rooms fail at once.
    private func heartbeat(_ link: PrefillLink) {
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

extension FinishReason {
    /// How an engine-side end reads as a room failure.
    func failureForRoom(_ number: UInt64) -> RequestFailure {
        switch self {
        case .failed(let failure): failure
        case .abort(let message): RequestFailure(.transfer, "request for room \(number) ended: \(message)")
        case .stop, .length: RequestFailure(.transfer, "request for room \(number) ended before its KV arrived")
        }
    }
}
