import Foundation

/// The one registry of disaggregation tunables read from the environment.
/// Each has a `PDSERVE_` name and SGLang's `SGLANG_` name as an alias (the
/// PDServe name wins when both are set).
public struct DisaggregationEnvironment: Sendable, Equatable {
    /// Upper bound on transfer worker threads.
    public var threadPoolSize: Int
    /// Transfer queues; each destination is served by one queue, in order.
    public var queueSize: Int
    /// Seconds a prefill request waits for its decode half to register.
    public var bootstrapTimeout: Double
    /// Seconds a decode request waits for its KV to arrive.
    public var waitingTimeout: Double
    /// Seconds between a decode instance's heartbeats to each prefill it depends on.
    public var heartbeatInterval: Double
    /// Missed heartbeats after which a prefill is declared dead.
    public var heartbeatMaxFailure: Int
    /// The address a prefill listening on all interfaces advertises to
    /// decode instances; nil: the address each decode reached it by.
    public var hostIP: String?
    /// The NIXL plugin the nixl backend creates (UCX; LIBFABRIC where its plugin loads).
    public var nixlBackend: String
    /// SGLang's Mooncake GPU memory pool (NVLINK, BAREX, INTRA_NODE_NVLINK); nil: the KV pool as it is.
    public var mooncakeCustomMemPool: String?

    /// Every variable: (PDServe name, SGLang alias, what it sets).
    public static let variables: [(name: String, alias: String, help: String)] = [
        ("PDSERVE_DISAGGREGATION_THREAD_POOL_SIZE", "SGLANG_DISAGGREGATION_THREAD_POOL_SIZE", "transfer worker threads (default clamp(int(0.75·cores)/8, 4, 12))"),
        ("PDSERVE_DISAGGREGATION_QUEUE_SIZE", "SGLANG_DISAGGREGATION_QUEUE_SIZE", "transfer queues, sharded by destination (default 4)"),
        ("PDSERVE_DISAGGREGATION_BOOTSTRAP_TIMEOUT", "SGLANG_DISAGGREGATION_BOOTSTRAP_TIMEOUT", "seconds a prefill request waits for its decode half (default 300)"),
        ("PDSERVE_DISAGGREGATION_WAITING_TIMEOUT", "SGLANG_DISAGGREGATION_WAITING_TIMEOUT", "seconds a decode request waits for its KV (default 300)"),
        ("PDSERVE_DISAGGREGATION_HEARTBEAT_INTERVAL", "SGLANG_DISAGGREGATION_HEARTBEAT_INTERVAL", "seconds between heartbeats to each prefill (default 5)"),
        ("PDSERVE_DISAGGREGATION_HEARTBEAT_MAX_FAILURE", "SGLANG_DISAGGREGATION_HEARTBEAT_MAX_FAILURE", "missed heartbeats before a prefill is declared dead (default 2)"),
        ("PDSERVE_HOST_IP", "SGLANG_HOST_IP", "address a prefill on 0.0.0.0/:: advertises for KV transfer (default: the address each decode reached it by)"),
        ("PDSERVE_DISAGGREGATION_NIXL_BACKEND", "SGLANG_DISAGGREGATION_NIXL_BACKEND", "NIXL plugin of the nixl transfer backend (default UCX)"),
        ("PDSERVE_MOONCAKE_CUSTOM_MEM_POOL", "SGLANG_MOONCAKE_CUSTOM_MEM_POOL", "Mooncake GPU memory pool NVLINK, BAREX or INTRA_NODE_NVLINK (refused: the KV cache is in host memory)"),
    ]

    public static var defaults: DisaggregationEnvironment {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        return DisaggregationEnvironment(
            threadPoolSize: min(12, max(4, Int(0.75 * Double(cores)) / 8)), queueSize: 4,
            bootstrapTimeout: 300, waitingTimeout: 300, heartbeatInterval: 5, heartbeatMaxFailure: 2, nixlBackend: "UCX")
    }

    /// Reads the variables, rejecting values that are not positive numbers (naming the variable).
    public static func load(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> DisaggregationEnvironment {
        var settings = defaults
        func value(_ index: Int) -> (String, String)? {
            let v = variables[index]
            if let s = environment[v.name] { return (v.name, s) }
            if let s = environment[v.alias] { return (v.alias, s) }
            return nil
        }
        func positiveInt(_ index: Int, _ target: inout Int) throws {
            guard let (name, text) = value(index) else { return }
            guard let n = Int(text.trimmingCharacters(in: .whitespaces)), n > 0 else {
                throw ConfigurationError("\(name)=\(text): expected a positive integer")
            }
            target = n
        }
        func positiveSeconds(_ index: Int, _ target: inout Double) throws {
            guard let (name, text) = value(index) else { return }
            guard let n = Double(text.trimmingCharacters(in: .whitespaces)), n > 0, n.isFinite else {
                throw ConfigurationError("\(name)=\(text): expected a positive number of seconds")
            }
            target = n
        }
        try positiveInt(0, &settings.threadPoolSize)
        try positiveInt(1, &settings.queueSize)
        try positiveSeconds(2, &settings.bootstrapTimeout)
        try positiveSeconds(3, &settings.waitingTimeout)
        try positiveSeconds(4, &settings.heartbeatInterval)
        try positiveInt(5, &settings.heartbeatMaxFailure)
        // Empty means unset, as SGLang reads SGLANG_HOST_IP.
        if let (name, text) = value(6), !text.trimmingCharacters(in: .whitespaces).isEmpty {
            let host = text.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            guard !AdvertisedAddress.isWildcard(host) else {
                throw ConfigurationError("\(name)=\(text): expected an address decode instances can reach")
            }
            settings.hostIP = host
        }
        if let (name, text) = value(7) {
            let plugin = text.trimmingCharacters(in: .whitespaces).uppercased()
            guard !plugin.isEmpty, plugin.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                throw ConfigurationError("\(name)=\(text): expected a NIXL plugin name such as UCX")
            }
            settings.nixlBackend = plugin
        }
        // SGLang's pools by name; empty means unset. Whether a pool can be used is the mooncake backend's call.
        if let (name, text) = value(8), !text.trimmingCharacters(in: .whitespaces).isEmpty {
            let pool = text.trimmingCharacters(in: .whitespaces).uppercased()
            guard ["NVLINK", "BAREX", "INTRA_NODE_NVLINK"].contains(pool) else {
                throw ConfigurationError("\(name)=\(text): expected NVLINK, BAREX or INTRA_NODE_NVLINK")
            }
            settings.mooncakeCustomMemPool = pool
        }
        return settings
    }
}

/// A start-up configuration problem, with a message naming the setting.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
