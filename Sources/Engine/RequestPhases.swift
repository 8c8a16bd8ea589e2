/// Where one request's time went, reported with its end (`meta_info.phases`
/// and the `pdserve:request_phase_seconds` histograms): the engine measures
/// its own queue, prefill and decode; a PD side-car adds the bootstrap and
/// KV phases of its half. The phases of the two halves have different
/// names, so a router can join them into one set.
public struct RequestPhases: Sendable, Equatable {
    public enum Phase: String, Sendable, CaseIterable {
        /// Arrival until the prompt's first forward pass (unified and prefill instances).
        case queueWait = "queue_wait"
        /// The first forward pass of the prompt until its first token: every chunk of the prompt.
        case prefillCompute = "prefill_compute"
        /// The first token until the end (unified and decode instances).
        case decode
        /// Prefill: arrival until the decode's destination for the KV was known.
        case prefillBootstrapWait = "prefill_bootstrap_wait"
        /// Prefill: the first KV pages handed to the transfer until the success status went out.
        case kvTransfer = "kv_transfer"
        /// Decode: arrival until its destination went to the prefill (pages reserved, prefill resolved).
        case decodeBootstrapWait = "decode_bootstrap_wait"
        /// Decode: destination sent until all of the KV and the first token arrived.
        case kvWait = "kv_wait"
        /// Decode: the KV arrived until the request joined the running batch (`--max-running-requests`).
        case decodeQueueWait = "decode_queue_wait"
    }

    public private(set) var seconds: [Phase: Double] = [:]
    /// Prefill: the KV bytes this instance sent for the request.
    public var transferBytes: Int?

    public init() {}

    public subscript(phase: Phase) -> Double? {
        get { seconds[phase] }
        set { seconds[phase] = newValue.map { max(0, $0) } }
    }

    /// These phases with `other`'s added (other's win where both have one).
    public func merging(_ other: RequestPhases) -> RequestPhases {
        var merged = self
        merged.seconds.merge(other.seconds) { _, new in new }
        merged.transferBytes = other.transferBytes ?? transferBytes
        return merged
    }
}
