import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A blocking TCP connection that carries transfer frames. Sends gather
/// straight from KV memory (`writev`), receives scatter straight into it,
/// so page bytes are never copied through an intermediate buffer.
public final class FrameConnection: @unchecked Sendable {
    private let fd: Int32
    private let sendLock = NSLock()
    private let closeLock = NSLock()
    private var closed = false
    public let peer: String
    /// Set once, when the handshake proved a shared key; before any other thread sends or reads.
    var seal: FrameSeal?

    init(fd: Int32, peer: String) {
        self.fd = fd
        self.peer = peer
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var buffer: Int32 = 4 << 20
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, socklen_t(MemoryLayout<Int32>.size))
        // A peer that stops reading must not block a sender forever.
        setSendTimeout(60)
    }

    deinit { Glibc.close(fd) }

    /// Connects to `host:port`, giving up after `timeout` seconds.
    public static func connect(host: String, port: Int, timeout: Double) throws -> FrameConnection {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &result) == 0, let first = result else {
            throw TransferError("cannot resolve \(host)")
        }
        defer { freeaddrinfo(result) }
        var lastError = "no address"
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), info.pointee.ai_protocol)
            if fd >= 0 {
                var limit = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - floor(timeout)) * 1e6))
                // On Linux the send timeout also bounds connect().
                setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
                if Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 {
                    return FrameConnection(fd: fd, peer: "\(host):\(port)")
                }
                lastError = String(cString: strerror(errno))
                Glibc.close(fd)
            }
            entry = info.pointee.ai_next
        }
        throw TransferError("cannot connect to \(host):\(port): \(lastError)")
    }

    /// Sends one frame, then `raw` byte ranges (a kvPages frame's pages), atomically with respect to other senders.
    public func send(_ message: TransferMessage, raw: [UnsafeRawBufferPointer] = []) throws {
        let header = TransferCodec.encode(message)
        try sendLock.withLock {
            let tag = seal?.tagNext(header) ?? []
            try header.withUnsafeBytes { head in
                try tag.withUnsafeBytes { tag in try writeAll([head, tag] + raw) }
            }
        }
    }

    private func writeAll(_ parts: [UnsafeRawBufferPointer]) throws {
        try transferAll(parts.map { iovec(iov_base: UnsafeMutableRawPointer(mutating: $0.baseAddress), iov_len: $0.count) }, what: "send to") {
            writev(fd, $0, $1)
        }
    }

    /// Runs `call` (writev or readv) until every byte of `vectors` moved, resuming mid-vector after short transfers.
    private func transferAll(_ vectors: [iovec], what: String, _ call: (UnsafePointer<iovec>, Int32) -> Int) throws {
        var vectors = vectors.filter { $0.iov_len > 0 }
        var index = 0
        while index < vectors.count {
            let batch = Int32(min(vectors.count - index, 512))
            let moved = vectors.withUnsafeBufferPointer { call($0.baseAddress! + index, batch) }
            if moved == 0 { throw TransferError("\(peer) closed the connection") }
            if moved < 0 {
                if errno == EINTR { continue }
                throw TransferError("\(what) \(peer) failed: \(String(cString: strerror(errno)))")
            }
            var left = moved
            while left > 0 && index < vectors.count {
                if left >= vectors[index].iov_len {
                    left -= vectors[index].iov_len
                    index += 1
                } else {
                    vectors[index].iov_base = vectors[index].iov_base! + left
                    vectors[index].iov_len -= left
                    left = 0
                }
            }
        }
    }

    /// Sends bytes without framing (plain HTTP requests).
    public func sendRaw(_ parts: [UnsafeRawBufferPointer]) throws {
        try sendLock.withLock { try writeAll(parts) }
    }

    /// Bounds every blocking read (0: no bound).
    func setReceiveTimeout(_ seconds: Double) { setTimeout(SO_RCVTIMEO, seconds) }

    /// Bounds every blocking send (0: no bound).
    func setSendTimeout(_ seconds: Double) { setTimeout(SO_SNDTIMEO, seconds) }

    private func setTimeout(_ option: Int32, _ seconds: Double) {
        var limit = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - floor(seconds)) * 1e6))
        setsockopt(fd, SOL_SOCKET, option, &limit, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Reads what is available (at least one byte, or 0 at end of stream).
    func readSome(into destination: UnsafeMutableRawPointer, capacity: Int) throws -> Int {
        while true {
            let n = recv(fd, destination, capacity, 0)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw TransferError("receive from \(peer) failed: \(String(cString: strerror(errno)))")
        }
    }

    /// Reads exactly `count` bytes into `destination`.
    public func read(into destination: UnsafeMutableRawPointer, count: Int) throws {
        var done = 0
        while done < count {
            let n = recv(fd, destination + done, count - done, 0)
            if n == 0 { throw TransferError("\(peer) closed the connection") }
            if n < 0 {
                if errno == EINTR { continue }
                throw TransferError("receive from \(peer) failed: \(String(cString: strerror(errno)))")
            }
            done += n
        }
    }

    /// Fills every range in order (scatter read: one `readv` may fill several).
    public func read(into parts: [UnsafeMutableRawBufferPointer]) throws {
        try transferAll(parts.map { iovec(iov_base: $0.baseAddress, iov_len: $0.count) }, what: "receive from") { readv(fd, $0, $1) }
    }

    /// Reads exactly `count` bytes. Past `eagerBytes` the buffer grows only as
    /// bytes arrive, so a header that announces megabytes and sends nothing
    /// costs its sender, not this process.
    public func readBytes(_ count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: min(count, Self.eagerBytes))
        if !bytes.isEmpty { try bytes.withUnsafeMutableBytes { try read(into: $0.baseAddress!, count: $0.count) } }
        while bytes.count < count {
            let chunk = min(count - bytes.count, Self.eagerBytes)
            let start = bytes.count
            bytes.append(contentsOf: repeatElement(0, count: chunk))
            try bytes.withUnsafeMutableBytes { try read(into: $0.baseAddress! + start, count: chunk) }
        }
        return bytes
    }

    static let eagerBytes = 64 << 10

    /// Reads and drops `count` bytes (payloads of frames that are refused).
    public func discard(_ count: UInt64) throws {
        var left = count
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: 1 << 16, alignment: 16)
        defer { scratch.deallocate() }
        while left > 0 {
            let n = Int(min(left, 1 << 16))
            try read(into: scratch, count: n)
            left -= UInt64(n)
        }
    }

    /// Reads the next frame: its header and buffered payload (for kvPages the fixed part; the page bytes stay in the socket).
    /// On a sealed connection the frame's tag is checked too, and an unknown type is an error (it cannot be checked).
    /// `maxPayload` bounds the payload further (a handshake's frames, before the peer proved anything).
    public func readFrame(maxPayload: Int = TransferCodec.maxControlPayload) throws -> (TransferCodec.Header, [UInt8]) {
        let head = try readBytes(TransferCodec.headerSize)
        let header = try TransferCodec.decodeHeader(head)
        guard header.payloadLength <= UInt64(maxPayload) else {
            throw TransferProtocolError("a frame of \(header.payloadLength) bytes exceeds the \(maxPayload) allowed here")
        }
        guard TransferCodec.isKnown(header.type) else {
            if seal != nil { throw TransferProtocolError("unknown frame type \(header.type) on an authenticated connection") }
            return (header, [])
        }
        let payload = try readBytes(try TransferCodec.bufferedPayloadLength(header))
        if let seal { try seal.checkNext(head + payload, tag: try readBytes(FrameSeal.tagSize)) }
        return (header, payload)
    }

    /// Unblocks any reader and refuses further sends; the descriptor closes on deinit.
    public func close() {
        closeLock.withLock {
            guard !closed else { return }
            closed = true
            shutdown(fd, Int32(SHUT_RDWR))
        }
    }
}

/// Accepts transfer connections on a TCP port. The host goes through
/// getaddrinfo (IPv4, IPv6, names); a host that cannot be bound is an error,
/// never a silent fallback to another address.
public final class FrameListener: @unchecked Sendable {
    private let fd: Int32
    public let port: Int

    public init(host: String, port: Int) throws {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &result)
        guard status == 0, let first = result else {
            throw TransferError("cannot listen on \(host):\(port): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(result) }
        var lastError = "no usable address"
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            entry = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), info.pointee.ai_protocol)
            guard fd >= 0 else { continue }
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            guard bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0, listen(fd, 128) == 0 else {
                lastError = String(cString: strerror(errno))
                Glibc.close(fd)
                continue
            }
            self.fd = fd
            self.port = SocketAddressText.port(ofSocket: fd)
            return
        }
        throw TransferError("cannot listen on \(host):\(port): \(lastError)")
    }

    /// Blocks for the next connection; nil once the listener is closed.
    public func accept() -> FrameConnection? {
        while true {
            var address = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let client = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.accept(fd, $0, &length) } }
            if client >= 0 { return FrameConnection(fd: client, peer: SocketAddressText.describe(address)) }
            if errno == EINTR || errno == ECONNABORTED { continue }
            return nil
        }
    }

    public func close() { shutdown(fd, Int32(SHUT_RDWR)); Glibc.close(fd) }
}

/// Small readings of socket addresses.
enum SocketAddressText {
    /// The local port a socket is bound to.
    static func port(ofSocket fd: Int32) -> Int {
        var address = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return numericHostAndPort(address).port
    }

    static func describe(_ address: sockaddr_storage) -> String {
        let (host, port) = numericHostAndPort(address)
        return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// The numeric host and port of an IPv4 or IPv6 address.
    static func numericHostAndPort(_ address: sockaddr_storage) -> (host: String, port: Int) {
        var address = address
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var service = [CChar](repeating: 0, count: Int(NI_MAXSERV))
        let length = socklen_t(address.ss_family == sa_family_t(AF_INET6) ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size)
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo($0, length, &host, socklen_t(host.count), &service, socklen_t(service.count), NI_NUMERICHOST | NI_NUMERICSERV)
            }
        }
        guard status == 0 else { return ("?", 0) }
        return (text(host), Int(text(service)) ?? 0)
    }
}

/// A transfer failure with a message for logs and clients.
public struct TransferError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
