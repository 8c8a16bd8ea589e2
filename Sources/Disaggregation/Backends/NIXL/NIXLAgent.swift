import Foundation
import NIXLShim

/// One NIXL agent with its backend and the KV pool registered with it; a
/// thin Swift face over the C shim. Safe to share between transfer threads
/// (the agent runs with strict thread sync).
final class NIXLAgent: @unchecked Sendable {
    private let handle: OpaquePointer
    let name: String

    /// Loads NIXL (once per process) from `library` and opens an agent with a
    /// `plugin` backend whose parameters `parameters` override.
    init(library: String, plugin: String, parameters: [String: String]) throws {
        try Self.check { pds_nixl_load(library, $0, $1) }
        guard pds_nixl_is_stub() == 0 else { throw ConfigurationError("\(library) is NIXL's stub build: it cannot move data") }
        let name = "pdserve-\(getpid())-\(UUID().uuidString.prefix(8))"
        let keys = parameters.keys.sorted()
        var error = [CChar](repeating: 0, count: 512)
        let opened = withCStrings(keys) { keyPointers in
            withCStrings(keys.map { parameters[$0]! }) { valuePointers in
                pds_nixl_open(name, plugin, keyPointers, valuePointers, keys.count, &error, error.count)
            }
        }
        guard let opened else {
            throw ConfigurationError("NIXL: \(text(error)) (PDSERVE_DISAGGREGATION_NIXL_BACKEND=\(plugin))")
        }
        handle = opened
        self.name = name
    }

    deinit { pds_nixl_close(handle) }

    /// Drives progress once: a target agent must poll so peers can connect and write.
    func progress() { _ = pds_nixl_progress(handle) }

    func register(_ base: UnsafeMutableRawPointer, length: Int) throws {
        try Self.check { pds_nixl_register(handle, base, length, $0, $1) }
    }

    var metadata: [UInt8] {
        var data: UnsafeMutableRawPointer?
        var length = 0
        guard pds_nixl_local_metadata(handle, &data, &length) == 0, let data else { return [] }
        defer { pds_nixl_free(data) }
        return Array(UnsafeRawBufferPointer(start: data, count: length))
    }

    /// Loads a peer's metadata; returns the peer agent's name.
    func loadRemote(_ metadata: [UInt8]) throws -> String {
        var name = [CChar](repeating: 0, count: 256)
        try Self.check { error, capacity in
            metadata.withUnsafeBytes { pds_nixl_load_remote(handle, $0.baseAddress, $0.count, &name, name.count, error, capacity) }
        }
        return text(name)
    }

    func forgetRemote(_ name: String) { pds_nixl_forget_remote(handle, name) }

    /// WRITEs the ranges into the peer's memory; returns once none of it can still land.
    func write(to remote: String, local: [UInt64], remoteAddresses: [UInt64], lengths: [UInt64]) throws {
        try Self.check { error, capacity in
            pds_nixl_write(handle, remote, local, remoteAddresses, lengths, local.count, error, capacity)
        }
    }

    private static func check(_ call: (UnsafeMutablePointer<CChar>, Int) -> Int32) throws {
        if let failure = shimFailure(of: call) { throw TransferError("NIXL: \(failure)") }
    }
}

/// C strings for a list of Swift strings, alive for the call.
private func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    let pointers = copies.map { UnsafePointer($0) }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress) }
}
