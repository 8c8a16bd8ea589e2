import Foundation
import Logging
import NIOHTTP1
import ServiceLifecycle

/// Polls every worker's health endpoint — and for a prefill also its
/// bootstrap server, since a prefill whose bootstrap server is down would
/// leave every paired decode waiting — plus `/get_load` when the policy
/// balances by load. Ready workers are checked every `intervalSeconds`,
/// the others every `notReadyIntervalSeconds` so they rejoin soon.
final class WorkerMonitor: Service, @unchecked Sendable {
    let registry: WorkerRegistry
    let client: UpstreamClient
    let settings: HealthSettings
    let pollsLoad: Bool
    let logger: Logger
    private let lock = NSLock()
    private var lastChecked: [String: ContinuousClock.Instant] = [:]
    /// Opened once the router's port is bound: a router that cannot bind
    /// must exit before it has checked (and announced) any worker.
    private let listening = AsyncStream<Void>.makeStream()

    init(registry: WorkerRegistry, client: UpstreamClient, settings: HealthSettings, pollsLoad: Bool, logger: Logger) {
        self.registry = registry
        self.client = client
        self.settings = settings
        self.pollsLoad = pollsLoad
        self.logger = logger
    }

    /// Lets `run` start checking; called when the HTTP server is listening.
    func serverIsListening() {
        listening.continuation.yield()
        listening.continuation.finish()
    }

    func run() async throws {
        let tick = min(settings.notReadyIntervalSeconds, settings.intervalSeconds, 1.0)
        // Cancelled (the server failed to start): the stream ends and so does the wait.
        for await _ in listening.stream { break }
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                await checkDue()
                try? await Task.sleep(for: .seconds(tick))
            }
        } onGracefulShutdown: {}
    }

    /// Checks, concurrently, the workers whose turn it is.
    func checkDue() async {
        let now = ContinuousClock.now
        let due = registry.all.filter { worker in
            lock.lock()
            defer { lock.unlock() }
            guard let last = lastChecked[worker.url] else { return true }
            // An open circuit is watched as closely as a worker that is down, so a restart closes it soon.
            let watched = worker.isReady && worker.circuitState != .open
            let interval = watched ? settings.intervalSeconds : settings.notReadyIntervalSeconds
            return now - last >= .seconds(interval)
        }
        // Workers checked now poll their load after the check.
        let checked = settings.disabled ? [] : Set(due.map(\.url))
        let loadPolled = pollsLoad ? registry.all.filter { $0.isReady && !checked.contains($0.url) } : []
        await withTaskGroup(of: Void.self) { group in
            for worker in due where !settings.disabled { group.addTask { await self.check(worker) } }
            for worker in loadPolled { group.addTask { await self.pollLoad(worker) } }
        }
    }

    /// One health check of one worker (also used when a worker is added, so
    /// `POST /workers` answers with its real state).
    func check(_ worker: Worker) async {
        markChecked(worker.url)
        var failure: String?
        do {
            let reply = try await client.call(.GET, worker.url + settings.endpoint, timeoutSeconds: settings.timeoutSeconds)
            if !reply.isSuccess { failure = "\(settings.endpoint) answered \(reply.status)" }
        } catch {
            failure = "\(settings.endpoint): \(UpstreamClient.describe(error))"
        }
        if failure == nil, let bootstrap = worker.spec.bootstrapHealthURL {
            do {
                let reply = try await client.call(.GET, bootstrap, timeoutSeconds: settings.timeoutSeconds)
                if !reply.isSuccess { failure = "bootstrap server \(bootstrap) answered \(reply.status)" }
            } catch {
                failure = "bootstrap server \(bootstrap): \(UpstreamClient.describe(error))"
            }
        }
        if let changed = worker.recordHealth(ok: failure == nil, detail: failure) {
            if changed {
                logger.info("worker ready", metadata: ["worker": "\(worker.url)", "role": "\(worker.role.rawValue)"])
            } else {
                logger.warning("worker unhealthy", metadata: ["worker": "\(worker.url)", "error": "\(failure ?? "")"])
            }
        }
        if pollsLoad && failure == nil { await pollLoad(worker) }
    }

    /// Reads `/get_load`: a JSON array with one object per data-parallel rank.
    func pollLoad(_ worker: Worker) async {
        guard let reply = try? await client.call(.GET, worker.url + "/get_load", timeoutSeconds: settings.timeoutSeconds),
              reply.isSuccess else { return }
        let ranks = (reply.json as? [[String: Any]]) ?? (reply.json as? [String: Any]).map { [$0] } ?? []
        func sum(_ key: String) -> Int { ranks.compactMap { ($0[key] as? NSNumber)?.intValue }.reduce(0, +) }
        worker.recordLoad(requests: sum("num_reqs"), tokens: sum("num_tokens"))
    }

    /// Waits until every worker is ready, or `timeoutSeconds` passed; returns the workers still not ready.
    func waitUntilReady(timeoutSeconds: Double) async -> [Worker] {
        let deadline = ContinuousClock.now + .seconds(timeoutSeconds)
        while true {
            let waiting = registry.all.filter { !$0.isReady }
            if waiting.isEmpty || ContinuousClock.now >= deadline || Task.isCancelled { return waiting }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    private func markChecked(_ url: String) {
        lock.lock()
        defer { lock.unlock() }
        lastChecked[url] = .now
    }

    func forget(url: String) {
        lock.lock()
        defer { lock.unlock() }
        lastChecked[url] = nil
    }
}
