import ByteExactJSON
import Engine
import Foundation

/// The `bootstrap_host`, `bootstrap_port` and `bootstrap_room` fields a PD
/// router adds to a request (arrays for batched inputs), applied to the
/// instance's inputs according to its disaggregation mode.
enum BootstrapFields {
    /// Unified instances ignore the fields (a router may send them to any
    /// instance); prefill and decode instances need them on every input —
    /// each prompt of a batch and each of its `n` samples is its own room.
    static func apply(_ body: JSONBody, mode: String, to inputs: inout [GenerateInput]) throws(APIError) {
        guard mode == "prefill" || mode == "decode" else { return }
        guard body.has("bootstrap_room") else {
            throw .invalid("This instance runs in \(mode) mode: requests need bootstrap_host and bootstrap_room (send them through a PD router).", param: "bootstrap_room")
        }
        let hosts = try list(body.fields["bootstrap_host"], count: inputs.count, field: "bootstrap_host") { $0 as? String }
        let ports = try list(body.fields["bootstrap_port"], count: inputs.count, field: "bootstrap_port", allowNull: true) { value -> Int?? in
            if value is NSNull { return .some(nil) }
            guard let port = JSONBody.integer(value), (1...65535).contains(port) else { return nil }
            return .some(port)
        }
        let rooms = try roomList(body.fields["bootstrap_room"], count: inputs.count)
        for i in inputs.indices {
            inputs[i].bootstrap = BootstrapTarget(host: hosts[i], port: ports[i], room: rooms[i])
        }
    }

    /// One room per input: a list as given, or — as SGLang's
    /// `_normalize_bootstrap_params` does — a scalar `room` expanded to
    /// `room + i` for input `i`, so the inputs of a batch never share a room.
    /// Both halves of a pair apply this rule to the same body, so they agree.
    static func roomList(_ value: Any?, count: Int) throws(APIError) -> [UInt64] {
        let rooms = try list(value, count: count, field: "bootstrap_room") { roomNumber($0) }
        guard !(value is [Any]) else { return rooms }
        return rooms.indices.map { rooms[0] &+ UInt64($0) }
    }

    /// A scalar applies to every input; an array must have one entry per input.
    private static func list<T>(_ value: Any?, count: Int, field: String, allowNull: Bool = false,
                                _ parse: (Any) -> T?) throws(APIError) -> [T] {
        guard let value, allowNull || !(value is NSNull) else {
            throw .invalid("'\(field)' is required in disaggregated mode.", param: field)
        }
        if let array = value as? [Any] {
            guard array.count == count else { throw .invalid("'\(field)' has \(array.count) entries for \(count) inputs.", param: field) }
            var out: [T] = []
            for item in array {
                guard let parsed = parse(item) else { throw .invalid("'\(field)' has an invalid entry.", param: field) }
                out.append(parsed)
            }
            return out
        }
        guard let parsed = parse(value) else { throw .invalid("'\(field)' is invalid.", param: field) }
        return Array(repeating: parsed, count: count)
    }

    /// Rooms are random 63-bit integers: read them without a trip through Double.
    private static func roomNumber(_ value: Any) -> UInt64? { JSONScalar.unsignedInteger(value) }
}
