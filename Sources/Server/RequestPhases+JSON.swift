import Engine

extension RequestPhases {
    /// `meta_info.phases`: seconds per phase this instance measured, and the KV bytes a prefill sent.
    var json: [String: Any] {
        var object: [String: Any] = [:]
        for (phase, seconds) in seconds { object[phase.rawValue] = seconds }
        if let transferBytes { object["kv_transfer_bytes"] = transferBytes }
        return object
    }
}
