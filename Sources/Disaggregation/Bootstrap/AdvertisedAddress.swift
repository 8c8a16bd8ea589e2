/// The address a prefill tells decode instances to open the transfer
/// connection to. A decode on another host must never be told a loopback
/// address. The `PDSERVE_HOST_IP` override (SGLang's `SGLANG_HOST_IP`) wins
/// whenever it is set; otherwise a specific bind address is advertised as
/// it is, and a wildcard bind (0.0.0.0, ::) advertises, per lookup, the
/// local address the decode's bootstrap request arrived on — by
/// construction an address that decode can reach.
enum AdvertisedAddress: Equatable, Sendable {
    case fixed(String)
    case perLookup

    static func isWildcard(_ host: String) -> Bool {
        ["", "0.0.0.0", "::", "[::]", "*", "0:0:0:0:0:0:0:0"].contains(host)
    }

    init(bindHost: String, override: String?) {
        if let override {
            self = .fixed(override)
        } else if Self.isWildcard(bindHost) {
            self = .perLookup
        } else {
            self = .fixed(bindHost)
        }
    }

    /// The address to answer a lookup that arrived on `localAddress`.
    func resolve(localAddress: String?) -> String? {
        switch self {
        case .fixed(let host): host
        case .perLookup: localAddress.map { $0.hasPrefix("::ffff:") && $0.contains(".") ? String($0.dropFirst(7)) : $0 }
        }
    }
}
