import Foundation

/// This host's own addresses.
enum LocalInterfaces {
    /// The first address of an interface that is up and not loopback (IPv4
    /// before IPv6), as SGLang picks the address it advertises; 127.0.0.1 on
    /// a host with none.
    /// The name of the interface that holds `address` ("lo" for 127.0.0.1); nil when none does.
    static func name(holding address: String) -> String? {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return nil }
        defer { freeifaddrs(list) }
        for entry in sequence(first: first, next: { $0.pointee.ifa_next }) {
            guard let host = numericHost(entry.pointee.ifa_addr) else { continue }
            if host == address { return String(cString: entry.pointee.ifa_name) }
        }
        return nil
    }

    private static func numericHost(_ address: UnsafeMutablePointer<sockaddr>?) -> String? {
        guard let address else { return nil }
        let family = Int32(address.pointee.sa_family)
        guard family == AF_INET || family == AF_INET6 else { return nil }
        var storage = sockaddr_storage()
        memcpy(&storage, address, family == AF_INET ? MemoryLayout<sockaddr_in>.size : MemoryLayout<sockaddr_in6>.size)
        return SocketAddressText.numericHostAndPort(storage).host
    }

    static func primaryAddress() -> String {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return "127.0.0.1" }
        defer { freeifaddrs(list) }
        var v4: [String] = [], v6: [String] = []
        for entry in sequence(first: first, next: { $0.pointee.ifa_next }) {
            let flags = Int32(entry.pointee.ifa_flags)
            guard flags & Int32(IFF_UP) != 0, flags & Int32(IFF_LOOPBACK) == 0,
                  let host = numericHost(entry.pointee.ifa_addr) else { continue }
            if Int32(entry.pointee.ifa_addr.pointee.sa_family) == AF_INET { v4.append(host) } else if !host.hasPrefix("fe80") { v6.append(host) }
        }
        return v4.first ?? v6.first ?? "127.0.0.1"
    }
}
