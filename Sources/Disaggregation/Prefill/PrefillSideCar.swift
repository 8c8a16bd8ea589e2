import Engine
import Foundation
import Kernels
import Logging
import Profiling

/// The prefill instance's disaggregation side-car, polled top-down by the
/// engine each step through SGLang's named queues:
///
/// 1. **bootstrap queue** — rooms whose decode half has not said where the
///    KV goes; the engine will not start their prompt (`mayPrefill`).
/// 2. **waiting** (the engine's own queue, then running) — after each
///    chunk the full pages computed so far are queued for transfer; the
///    partial last page waits for the final chunk; then the first token and
///    a success status.
/// 3. **inflight queue** — ended requests whose transfer jobs still read
///    their pages (`PageCustody.inflight`); they are finished, pages freed,
///    when their last job ran.
///
/// Every byte leaves on transfer-queue threads, one serial queue per decode
/// connection, never on the engine thread. A room ends through one path
/// (`ending`), which tells the decode side when it did not end in success.
public final class PrefillSideCar: EngineHooks, @unchecked Sendable {
    let storage: PagedKVStorage
    let layout: KVLayout
    let backend: any TransferBackend
    let settings: DisaggregationEnvironment
    let clock: any MonotonicClock
    let logger: Logger
    /// The engine's profiler: KV sends and room phases become spans while it records.
    let profiler: Profiler
    let listener: FrameListener
    /// With a key, only decodes that prove it are served (`TransferHandshake`).
    let authKey: ChannelKey?
    private let queues: TransferWorkers
    /// Wakes the engine thread when a transfer job finished.
    public var wake: @Sendable () -> Void = {}

    private let lock = NSLock()
    /// Live rooms by engine request id, and by room number.
    private var rooms: [String: PrefillRoom] = [:]
    private var roomIDs: [UInt64: String] = [:]
    /// Destinations that arrived before their request (bounded, expire after the bootstrap timeout).
    private var earlyDestinations: [UInt64: PrefillDestination] = [:]
    /// Rooms that ended recently, so a late destination is refused at once instead of waiting out the timeout.
    private var endedRooms: [UInt64: (at: Double, why: String)] = [:]
    private var nextLinkID = 0
    /// Paired decodes: a connection takes a slot here only once its hello checked out.
    private var links: [Int: DecodeLink] = [:]
    /// Connections still in their handshake, by link id (ids grow, so the smallest is the oldest).
    private var handshaking: [Int: FrameConnection] = [:]
    /// The soonest time an early destination or an ended room expires: `willStep` scans the tables only then.
    private var nextExpiry = Double.infinity
    /// Sessions of lost links whose last transfer job has run, and when.
    private var drainedSessions: [UInt64: Double] = [:]
    /// Pages listed by all early destinations together.
    private var earlyPages = 0
    static let maxEarlyDestinations = 4096
    static let maxEndedRooms = 16384
    /// Paired transfer connections (one per decode instance in a deployment);
    /// each holds a reader thread, so beyond this a new decode is refused.
    static let maxLinks = 256
    /// Connections that have not finished their handshake. Past this the
    /// oldest is dropped: a flood of connections that never prove anything
    /// cannot keep a real decode (which answers the challenge within a
    /// round trip) from pairing, nor hold more than this many threads.
    static let maxHandshakes = 64
    /// Seconds a new connection has to complete its hello.
    static let handshakeTimeout = 10.0
    /// An early destination waits for its request this long at most: the
    /// router sends both halves at once, so a request that is this late is
    /// not coming (the bootstrap timeout, when shorter, wins).
    static let earlyDestinationTimeout = 30.0

    /// Listens for decode instances on `host:transferPort` (0: any free port).
    public init(storage: PagedKVStorage, layout: KVLayout, backend: any TransferBackend, settings: DisaggregationEnvironment,
                host: String, transferPort: Int = 0, authKey: ChannelKey? = nil, clock: any MonotonicClock = SystemMonotonicClock(),
                profiler: Profiler = Profiler(), logger: Logger) throws {
        self.storage = storage
        self.profiler = profiler
        self.authKey = authKey
        self.layout = layout
        self.backend = backend
        self.settings = settings
        self.clock = clock
        self.logger = logger
        listener = try FrameListener(host: host, port: transferPort)
        queues = TransferWorkers(count: min(settings.queueSize, settings.threadPoolSize), name: "pdserve-kv-send")
        let thread = Thread { [weak self] in self?.acceptLoop() }
        thread.name = "pdserve-kv-accept"
        thread.start()
    }

    public var transferPort: Int { listener.port }

    public func stop() {
        listener.close()
        let open = lock.withLock { links.values.map(\.connection) + handshaking.values }
        for connection in open { connection.close() }
        queues.stop()
        backend.shutdown()
    }

    // MARK: EngineHooks (engine thread; no I/O here)

    public var generatesFirstTokenOnly: Bool { true }

    public func admission(for input: GenerateInput) -> DisaggregatedAdmission {
        guard let target = input.bootstrap, !backend.movesNothing else { return .prefill }
        let room = PrefillRoom(id: input.id, number: target.room, promptCount: input.promptTokens.count, clock: clock)
        lock.withLock {
            rooms[input.id] = room
            if roomIDs[target.room] != nil {
                // Two requests cannot share a room: the decode half could not tell their pages apart.
                room.fail(RequestFailure(.invalidPeerData, "bootstrap_room \(target.room) is already in use on this prefill instance"))
                return
            }
            roomIDs[target.room] = input.id
            if let destination = takeEarlyDestination(target.room) { bind(room, to: destination) }
        }
        return .prefill
    }

    public func mayPrefill(id: String) -> Bool {
        lock.withLock {
            guard let room = rooms[id] else { return true }
            return room.state == .waitingForInput
        }
    }

    public func computedKV(id: String, pages: [Int32], computed: Int, promptCount: Int) {
        lock.withLock {
            guard let room = rooms[id], let destination = room.destination, !room.state.isTerminal else { return }
            let pageSize = Int(layout.pageSize)
            // Only whole pages travel before the prompt ends; the partial last one waits for the final chunk.
            let ready = computed >= promptCount ? (promptCount + pageSize - 1) / pageSize : computed / pageSize
            guard ready > room.sentPages else { return }
            let first = room.sentPages
            let source = Array(pages[first..<ready]), target = Array(destination.pages[first..<ready])
            room.sentPages = ready
            room.move(to: .transferring)
            let bytes = source.count * pageBytes
            enqueue(for: room, on: destination.link) { [profiler] link in
                try profiler.measure("kv_send", category: "transfer",
                                     args: ["bootstrap_room": .uint(room.number), "first_page": .int(first), "pages": .int(source.count), "bytes": .int(bytes)]) {
                    try link.writer!.write(room: room.number, firstIndex: first, source: source, destination: target)
                }
            }
        }
    }

    public func sampledFirstToken(id: String, token: Int, logprob: TokenLogprob?) {
        lock.withLock {
            guard let room = rooms[id], let destination = room.destination, !room.state.isTerminal else { return }
            let metadata = TransferMessage.Metadata(
                room: room.number, token: UInt32(token), logprob: logprob?.logprob,
                top: (logprob?.top ?? []).map { .init(token: UInt32($0.token), logprob: $0.logprob) })
            enqueue(for: room, on: destination.link) { [self] link in
                try profiler.measure("kv_metadata", category: "transfer", args: ["bootstrap_room": .uint(room.number)]) {
                    try link.connection.send(.metadata(metadata))
                    try link.connection.send(.status(room: room.number, success: true, message: ""))
                }
                lock.withLock { room.move(to: .success) }
            }
        }
    }

    /// The bytes of one page of every layer's K and V.
    private var pageBytes: Int { Int(KVDataPlane.byteCount(pages: 1, storage: storage)) }

    /// The one end path of a prefill room.
    public func ending(id: String, reason: FinishReason) -> RoomEnding {
        lock.withLock {
            guard let room = rooms[id] else { return RoomEnding(custody: .engine) }
            room.ended = true
            let why: String
            switch reason {
            case .stop, .length:
                why = "finished"
            case .abort(let message):
                why = message
                room.fail(RequestFailure(.transfer, "prefill request ended: \(message)"))
            case .failed(let failure):
                why = failure.message
                room.fail(failure)
            }
            if case .failed(let failure) = room.state, !room.peerKnowsFailure, let link = room.destination?.link {
                room.peerKnowsFailure = true
                // Queued behind the room's page jobs (which now skip): the decode learns why.
                enqueue(for: room, on: link, control: true) { link in
                    try link.connection.send(.abort(room: room.number, reason: "prefill: \(failure.message)"))
                }
            }
            remember(room, why: why)
            if room.isSettled {
                forget(room)
                return RoomEnding(custody: .engine, phases: room.phases(bytesPerPage: pageBytes))
            }
            // Its phases come with `finishInflight`, once the last job ran.
            return RoomEnding(custody: .inflight)
        }
    }

    public func willStep(_ core: EngineCore) {
        var finish: [(String, RequestFailure?, RequestPhases)] = []
        var fail: [(String, RequestFailure)] = []
        lock.withLock {
            let now = clock.now()
            for room in rooms.values {
                if room.isSettled {
                    // Inflight queue: the last job ran; the request ends now.
                    finish.append((room.id, room.state.failure, room.phases(bytesPerPage: pageBytes)))
                    forget(room)
                } else if room.ended {
                    continue
                } else if case .failed(let failure) = room.state {
                    fail.append((room.id, failure))
                } else if room.state == .bootstrapping, now - room.created > settings.bootstrapTimeout {
                    // Bootstrap queue: the decode half never registered the room.
                    let failure = RequestFailure(.timeout, "no decode instance registered room \(room.number) within the \(secondsText(settings.bootstrapTimeout)) bootstrap timeout")
                    room.fail(failure)
                    fail.append((room.id, failure))
                }
            }
            // Not a pass over both tables every step: only once something is due.
            if now - nextExpiry > 0 {
                let early = earlyWait
                for (number, destination) in earlyDestinations where now - destination.arrived > early {
                    _ = takeEarlyDestination(number)
                    refuse(number, on: destination.link, "the prefill instance received no request for room \(number) within \(secondsText(early)) of its destination")
                }
                endedRooms = endedRooms.filter { now - $0.value.at <= settings.bootstrapTimeout }
                nextExpiry = min((earlyDestinations.values.map(\.arrived).min() ?? .infinity) + early,
                                 (endedRooms.values.map(\.at).min() ?? .infinity) + settings.bootstrapTimeout)
            }
        }
        for (id, failure, phases) in finish { core.finishInflight(id: id, failure: failure, phases: phases) }
        for (id, failure) in fail { core.abort(id: id, reason: .failed(failure)) }
    }

    /// Whether a lost connection's transfer jobs have all run, so nothing of
    /// it can still write into the decode's pool; nil for an unknown session.
    public func isDrained(session: UInt64) -> Bool? {
        lock.withLock {
            if drainedSessions[session] != nil { return true }
            return links.values.contains { $0.session == session } ? false : nil
        }
    }

    // MARK: bookkeeping (call with `lock` held)

    private var earlyWait: Double { min(settings.bootstrapTimeout, Self.earlyDestinationTimeout) }

    private func takeEarlyDestination(_ number: UInt64) -> PrefillDestination? {
        guard let destination = earlyDestinations.removeValue(forKey: number) else { return nil }
        earlyPages -= destination.pages.count
        return destination
    }

    /// Why a destination for a room that is not here yet cannot be held, or nil (and it is held).
    private func holdEarly(_ destination: PrefillDestination, room: UInt64) -> String? {
        if earlyDestinations[room] != nil { return "room \(room) already has a destination waiting on the prefill instance" }
        // No prompt this instance could prefill needs more pages than its pool has.
        guard destination.pages.count <= storage.pageCount else {
            return "the destination for room \(room) lists \(destination.pages.count) pages, more than any prompt here can fill (\(storage.pageCount))"
        }
        guard earlyDestinations.count < Self.maxEarlyDestinations, earlyPages + destination.pages.count <= 4 * storage.pageCount else {
            return "the prefill instance cannot hold another destination for room \(room) before its request arrives"
        }
        earlyDestinations[room] = destination
        earlyPages += destination.pages.count
        nextExpiry = min(nextExpiry, destination.arrived + earlyWait)
        return nil
    }

    private func remember(_ room: PrefillRoom, why: String) {
        if endedRooms.count >= Self.maxEndedRooms, let oldest = endedRooms.min(by: { $0.value.at < $1.value.at }) {
            endedRooms[oldest.key] = nil
        }
        let now = clock.now()
        endedRooms[room.number] = (now, why)
        nextExpiry = min(nextExpiry, now + settings.bootstrapTimeout)
    }

    private func forget(_ room: PrefillRoom) {
        room.trace(bytesPerPage: pageBytes, into: profiler.recorder)
        rooms[room.id] = nil
        if roomIDs[room.number] == room.id { roomIDs[room.number] = nil }
    }

    private func bind(_ room: PrefillRoom, to destination: PrefillDestination) {
        if let failure = room.bind(destination, pageSize: Int(layout.pageSize)) {
            room.fail(failure)
            room.peerKnowsFailure = true
            refuse(room.number, on: destination.link, failure.message)
        }
    }

    /// Tells a decode, on its transfer queue, that a room will not be served.
    private func refuse(_ number: UInt64, on link: DecodeLink, _ message: String) {
        queues.submit(shard: link.shard) { [self] in
            guard lock.withLock({ link.alive }) else { return }
            do { try link.connection.send(.status(room: number, success: false, message: message)) } catch { linkFailed(link, "\(error)") }
        }
    }

    /// Queues a job on the link's transfer queue; the room's pages stay held
    /// until it ran. Page jobs of a failed room are skipped; control jobs
    /// (`control`) still run so the decode hears about the failure.
    private func enqueue(for room: PrefillRoom, on link: DecodeLink, control: Bool = false, _ job: @escaping (DecodeLink) throws -> Void) {
        room.pendingJobs += 1
        queues.submit(shard: link.shard) { [self] in
            let run = lock.withLock { link.alive && (control || !room.state.isTerminal || room.state == .success) }
            var error: Error?
            if run {
                do { try job(link) } catch let failure { error = failure }
            }
            lock.withLock { room.pendingJobs -= 1 }
            if let error { linkFailed(link, "KV transfer to decode failed: \(error)") }
            wake()
        }
    }

    // MARK: connections (transfer threads)

    private func acceptLoop() {
        while let connection = listener.accept() {
            let (link, dropped) = lock.withLock { () -> (DecodeLink, FrameConnection?) in
                var dropped: FrameConnection?
                if handshaking.count >= Self.maxHandshakes, let oldest = handshaking.keys.min() {
                    dropped = handshaking.removeValue(forKey: oldest)
                }
                nextLinkID += 1
                handshaking[nextLinkID] = connection
                return (DecodeLink(id: nextLinkID, connection: connection), dropped)
            }
            if let dropped {
                logger.warning("dropped transfer connection from \(dropped.peer): \(Self.maxHandshakes) handshakes are open and it is the oldest")
                dropped.close()
            }
            let thread = Thread { [weak self] in self?.serve(link) }
            thread.name = "pdserve-kv-link-\(link.id)"
            thread.start()
        }
    }

    /// Reads one decode instance's frames until the connection ends.
    private func serve(_ link: DecodeLink) {
        var reason = "decode instance \(link.connection.peer) disconnected"
        do {
            try handshake(link)
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
            reason = "transfer connection from \(link.connection.peer) closed: \(error)"
            logger.info("\(reason)")
        }
        lock.withLock { handshaking[link.id] = nil }
        linkFailed(link, reason)
        // Kept until drained so `isDrained` can tell "still running" from "unknown".
        queues.submit(shard: link.shard) { [self] in lock.withLock { links[link.id] = nil } }
    }

    private func handshake(_ link: DecodeLink) throws {
        link.connection.setReceiveTimeout(Self.handshakeTimeout)
        let challenge = try TransferHandshake.challenge(link.connection)
        let (header, payload) = try link.connection.readFrame(maxPayload: TransferHandshake.maxFrameBytes)
        guard case .hello(let hello) = try TransferCodec.decode(header, payload: payload), hello.role == "decode" else {
            throw TransferProtocolError("the first frame must be a decode's hello")
        }
        if let refusal = TransferHandshake.refusal(of: hello, challenge: challenge, key: authKey) {
            try? link.connection.send(.error(message: "cannot pair: \(refusal)"))
            throw TransferProtocolError("refused decode instance \(hello.instance): \(refusal)")
        }
        if let mismatch = layout.mismatch(with: hello.layout) ?? (hello.backend == backend.name ? nil : "transfer backend differs: \(backend.name) here, \(hello.backend) there") {
            try? link.connection.send(.error(message: "cannot pair: \(mismatch)"))
            throw TransferProtocolError("refused decode instance \(hello.instance): \(mismatch)")
        }
        // Proven (or no key asked for): only now does the connection take a link slot.
        let paired = lock.withLock { () -> Bool in
            guard handshaking.removeValue(forKey: link.id) != nil, links.count < Self.maxLinks else { return false }
            links[link.id] = link
            return true
        }
        guard paired else {
            try? link.connection.send(.error(message: "the prefill instance has \(Self.maxLinks) decode instances paired; try again later"))
            throw TransferProtocolError("refused decode instance \(hello.instance): \(Self.maxLinks) are paired (or its handshake was dropped)")
        }
        do {
            link.writer = try backend.makeWriter(peerDescriptor: hello.descriptor, connection: link.connection)
        } catch {
            try? link.connection.send(.error(message: "cannot reach the decode's KV pool: \(error)"))
            throw error
        }
        let reply = TransferMessage.Hello(role: "prefill", instance: "prefill", layout: layout, backend: backend.name,
                                          descriptor: backend.localDescriptor, session: link.session)
        try link.connection.send(.hello(TransferHandshake.prefillHello(reply, challenge: challenge, decodeNonce: hello.nonce, key: authKey)))
        TransferHandshake.seal(link.connection, key: authKey, challenge: challenge, decodeNonce: hello.nonce, side: .prefill)
        // A paired decode may stay quiet for as long as it has nothing to ask.
        link.connection.setReceiveTimeout(0)
    }

    private func handle(_ message: TransferMessage, from link: DecodeLink) {
        switch message {
        case .transferRequest(let request):
            lock.withLock {
                let destination = PrefillDestination(link: link, pages: request.pages.map { Int32(bitPattern: $0) },
                                                     promptLength: Int(request.promptLength), arrived: clock.now())
                if let id = roomIDs[request.room], let room = rooms[id] {
                    guard room.destination == nil, !room.state.isTerminal else {
                        refuse(request.room, on: link, "room \(request.room) already has a destination or has ended")
                        return
                    }
                    bind(room, to: destination)
                } else if let ended = endedRooms[request.room] {
                    refuse(request.room, on: link, "room \(request.room) already ended on the prefill instance: \(ended.why)")
                } else if let refusal = holdEarly(destination, room: request.room) {
                    refuse(request.room, on: link, refusal)
                }
            }
            wake()
        case let .abort(number, reason):
            lock.withLock {
                if earlyDestinations[number]?.link === link { _ = takeEarlyDestination(number) }
                if let id = roomIDs[number], let room = rooms[id], room.destination?.link === link {
                    room.peerKnowsFailure = true
                    room.fail(RequestFailure(.transfer, "decode side aborted room \(number): \(reason)"))
                    // Behind every job already queued for the room: once the decode
                    // reads the ack, nothing more of this room reaches its pool.
                    enqueue(for: room, on: link, control: true) { link in try link.connection.send(.abortAck(room: number)) }
                } else {
                    queues.submit(shard: link.shard) { try? link.connection.send(.abortAck(room: number)) }
                }
            }
            wake()
        case .heartbeat:
            break
        default:
            logger.warning("dropped unexpected \(message) from decode link \(link.id)")
        }
    }

    /// Fails every room bound to a dead link and closes it.
    private func linkFailed(_ link: DecodeLink, _ reason: String) {
        let wasAlive = lock.withLock { () -> Bool in
            guard link.alive else { return false }
            link.alive = false
            for room in rooms.values where room.destination?.link === link && !room.state.isTerminal {
                room.peerKnowsFailure = true
                room.fail(RequestFailure(.peerLost, "KV transfer failed: \(reason)"))
            }
            for (number, destination) in earlyDestinations where destination.link === link { _ = takeEarlyDestination(number) }
            return true
        }
        if wasAlive {
            link.connection.close()
            // Runs after every job the link had queued: from then on nothing of it writes.
            queues.submit(shard: link.shard) { [self] in
                lock.withLock {
                    let now = clock.now()
                    drainedSessions = drainedSessions.filter { now - $0.value < 600 }
                    drainedSessions[link.session] = now
                }
            }
            wake()
        }
    }
}
