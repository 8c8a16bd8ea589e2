import Foundation
import NIOCore

/// The requests running on one connection, each with the action that aborts
/// it, so that a connection that closes aborts exactly what still runs on
/// it. A request removes its entry when it ends: a keep-alive connection that
/// serves a million requests holds only the entries of those still running
/// (a `closeFuture` callback per request lived until the connection closed).
final class DisconnectWatch: @unchecked Sendable {
    private let lock = NSLock()
    private var aborts: [Int: @Sendable () -> Void] = [:]
    private var nextKey = 0
    private var closed = false
    private let counter: ConnectionCounter

    init(counter: ConnectionCounter) { self.counter = counter }

    /// Watches a request until `end(_:)`; a connection already closed runs
    /// `abort` at once and returns nil.
    func watch(abort: @escaping @Sendable () -> Void) -> Int? {
        let key: Int? = lock.withLock {
            guard !closed else { return nil }
            nextKey += 1
            aborts[nextKey] = abort
            return nextKey
        }
        guard key != nil else {
            abort()
            return nil
        }
        counter.watchStarted()
        return key
    }

    /// The request finished: nothing to abort any more.
    func end(_ key: Int) {
        if lock.withLock({ aborts.removeValue(forKey: key) }) != nil { counter.watchEnded() }
    }

    /// The connection closed: aborts every request still running on it.
    func connectionClosed() {
        let pending = lock.withLock {
            closed = true
            defer { aborts = [:] }
            return Array(aborts.values)
        }
        for abort in pending {
            counter.watchEnded()
            abort()
        }
    }

    var count: Int { lock.withLock { aborts.count } }

    /// The watch of `channel`'s connection; a channel whose pipeline is gone
    /// (it closed) gets a closed watch, so its requests abort at once.
    static func of(_ channel: any Channel, counter: ConnectionCounter) async -> DisconnectWatch {
        if let handler = try? await channel.pipeline.handler(type: ClientDisconnectHandler.self).get() { return handler.watch }
        let closed = DisconnectWatch(counter: counter)
        closed.connectionClosed()
        return closed
    }
}

/// Open connections and watched requests across a server, for its limit and
/// /metrics (a watch count that stays above the running requests is a leak).
public final class ConnectionCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var connections = 0
    private var watches = 0

    public init() {}

    /// Counts a new connection; false when it is beyond `limit` (it is counted all the same until it closes).
    func open(limit: Int) -> Bool {
        lock.withLock {
            connections += 1
            return connections <= limit
        }
    }

    func closed() { lock.withLock { connections -= 1 } }
    func watchStarted() { lock.withLock { watches += 1 } }
    func watchEnded() { lock.withLock { watches -= 1 } }

    public var openConnections: Int { lock.withLock { connections } }
    var watchedRequests: Int { lock.withLock { watches } }
}
