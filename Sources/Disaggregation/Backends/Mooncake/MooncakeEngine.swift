import Foundation
import MooncakeShim

/// One Mooncake transfer engine (P2P handshake, no metadata server) with
/// the KV pool registered with it; a thin Swift face over the C++ shim.
/// Mooncake's engine takes batches from several threads at once.
final class MooncakeEngine: @unchecked Sendable {
    private let handle: OpaquePointer
    /// This engine's segment name, "host:rpc_port": what a peer opens.
    let session: String

    /// Loads Mooncake (once per process) and starts an engine whose segment
    /// peers reach at `host`; `devices` filters the RDMA devices it uses.
    init(library: MooncakeLibrary, host: String, devices: String?) throws {
        if let failure = shimFailure(of: { pds_mooncake_load(library.engine, library.python, $0, $1) }) {
            let python = library.python.map { " and \($0)" } ?? ""
            throw ConfigurationError("Mooncake: \(failure) (it needs Debian's \(MooncakeLibrary.debianPackages)\(python))")
        }
        var error = [CChar](repeating: 0, count: 512)
        guard let opened = pds_mooncake_open(host, devices, &error, error.count) else {
            throw ConfigurationError("Mooncake: \(text(error))")
        }
        handle = opened
        var name = [CChar](repeating: 0, count: 300)
        _ = pds_mooncake_session(opened, &name, name.count)
        session = text(name)
    }

    deinit { pds_mooncake_close(handle) }

    func register(_ base: UnsafeMutableRawPointer, length: Int) throws {
        if let failure = shimFailure(of: { pds_mooncake_register(handle, base, length, $0, $1) }) { throw ConfigurationError("Mooncake: \(failure)") }
    }

    /// Opens a peer's segment (a handshake with its engine).
    func openSegment(_ session: String) throws -> UInt64 {
        var segment: UInt64 = 0
        if let failure = shimFailure(of: { pds_mooncake_open_segment(handle, session, &segment, $0, $1) }) { throw TransferError(failure) }
        return segment
    }

    func closeSegment(_ segment: UInt64) { pds_mooncake_close_segment(handle, segment) }

    /// WRITEs the ranges into the segment's registered memory as one batch;
    /// returns once none of it can still land.
    func write(segment: UInt64, local: [UInt64], remote: [UInt64], lengths: [UInt64]) throws {
        if let failure = shimFailure(of: { pds_mooncake_write(handle, segment, local, remote, lengths, local.count, $0, $1) }) {
            throw TransferError(failure)
        }
    }
}
