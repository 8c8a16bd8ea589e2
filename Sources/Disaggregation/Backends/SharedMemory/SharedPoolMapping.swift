import Foundation
import Kernels
#if canImport(Glibc)
import Glibc
#endif

/// A decode instance's KV pool mapped into the prefill process (shm
/// backend). The layout is `PagedKVStorage`'s for `spec`, which the hello
/// checked both sides share: a buffer per cache tensor per layer, of
/// `pageCount` pages each.
public final class SharedPoolMapping: @unchecked Sendable {
    private let base: UnsafeMutableRawPointer
    private let length: Int
    public let pageCount: Int
    /// Where each of the pool's buffers starts, in pool order.
    let buffers: [UnsafeMutableRawPointer]

    public convenience init(path: String, layout: KVLayout) throws {
        try self.init(path: path, spec: layout.spec, pageSize: Int(layout.pageSize))
    }

    /// Maps `path`, which must be a regular pool file of this user under
    /// /dev/shm: never a symlink (O_NOFOLLOW) nor a name outside that shape.
    public init(path: String, spec: KVCacheSpec, pageSize: Int) throws {
        guard SharedPoolFile.isPoolPath(path) else { throw TransferError("refusing shared pool path \(path)") }
        let fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw TransferError("cannot open decode KV pool \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw TransferError("cannot stat \(path)") }
        guard (info.st_mode & S_IFMT) == S_IFREG, info.st_uid == geteuid() else {
            throw TransferError("decode KV pool \(path) is not a regular file of this user")
        }
        let size = Int(info.st_size)
        let perPageAllBuffers = pageSize * spec.bytesPerToken
        guard size > 0, size % perPageAllBuffers == 0 else { throw TransferError("decode KV pool \(path) has \(size) bytes, not a whole number of pages for this layout") }
        guard let mapped = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), mapped != MAP_FAILED else {
            throw TransferError("cannot map \(path): \(String(cString: strerror(errno)))")
        }
        base = mapped
        length = size
        pageCount = size / perPageAllBuffers
        buffers = spec.bufferOffsets(pageCount: pageCount, pageSize: pageSize).map { mapped + $0 }
    }

    deinit { munmap(base, length) }
}
