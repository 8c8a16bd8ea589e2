#if canImport(Glibc)
import Glibc
#endif

/// A row-major `[rows, cols]` weight matrix (a Linear layer's `[out, in]`),
/// either borrowed from a memory-mapped checkpoint or owned.
///
/// `owner` keeps the backing memory (a mapping or a buffer) alive for as long
/// as any copy of the matrix exists.
public struct WeightMatrix: @unchecked Sendable {
    public let rows: Int
    public let cols: Int
    public let dtype: DType
    let base: UnsafeRawPointer
    let owner: AnyObject
    /// The weights in bf16, repacked into 32-row column panels for the
    /// AVX-512 kernels; nil uses the row-major kernels.
    let panels: OwnedBuffer?
    /// Whether `panels` hold the weights exactly (a bf16 checkpoint), so the
    /// fp32 kernels may read them too; panels rounded from fp32 weights serve
    /// only the bf16 kernel.
    let panelsAreExact: Bool

    /// Wraps memory that `owner` keeps alive. `base` must hold rows*cols elements of `dtype`.
    public init(rows: Int, cols: Int, dtype: DType, base: UnsafeRawPointer, owner: AnyObject) {
        self.rows = rows
        self.cols = cols
        self.dtype = dtype
        self.base = base
        self.owner = owner
        self.panels = nil
        self.panelsAreExact = false
    }

    private init(_ matrix: WeightMatrix, panels: OwnedBuffer, exact: Bool) {
        rows = matrix.rows
        cols = matrix.cols
        dtype = matrix.dtype
        base = matrix.base
        owner = matrix.owner
        self.panels = panels
        panelsAreExact = exact
    }

    /// Whether linear layers would use a panel-packed copy on this machine.
    public static var panelKernelsAvailable: Bool { pds_avx512_enabled() != 0 }

    /// This matrix with a panel-packed bf16 copy for the AVX-512 linear
    /// kernels where they run; otherwise itself.
    ///
    /// bf16 weights are packed as they are (both kernels read the copy); it
    /// costs as much memory as the bf16 weights again (the mapped original
    /// stays for row lookups and the portable path). fp32 weights are packed
    /// only for `precision` `.bf16`, rounded to bf16, costing half their fp32
    /// size; the fp32 kernels keep reading the original.
    public func packedForLinear(precision: MatmulPrecision = .fp32) -> WeightMatrix {
        guard panels == nil, Self.panelKernelsAvailable else { return self }
        let packed = OwnedBuffer(byteCount: pds_panel_elements(Int32(rows), Int32(cols)) * 2)
        let target = packed.pointer.assumingMemoryBound(to: UInt16.self)
        switch dtype {
        case .bf16:
            pds_pack_bf16_panels(base.assumingMemoryBound(to: UInt16.self), Int32(rows), Int32(cols), target)
            return WeightMatrix(self, panels: packed, exact: true)
        case .f32:
            guard precision.effective == .bf16 else { return self }
            let rounded = UnsafeMutablePointer<UInt16>.allocate(capacity: rows * cols)
            defer { rounded.deallocate() }
            pds_f32_to_bf16(base.assumingMemoryBound(to: Float.self), rounded, rows * cols)
            pds_pack_bf16_panels(rounded, Int32(rows), Int32(cols), target)
            return WeightMatrix(self, panels: packed, exact: false)
        }
    }

    /// Whether the linear kernels read a panel-packed copy (for some precision).
    public var isPanelPacked: Bool { panels != nil }

    /// Bytes of the panel-packed copy, if any (memory on top of the checkpoint).
    public var packedByteCount: Int { panels?.byteCount ?? 0 }

    /// Copies `values` into an owned fp32 matrix.
    public init(rows: Int, cols: Int, values: [Float]) {
        precondition(values.count == rows * cols, "matrix shape does not match its values")
        let buffer = OwnedBuffer(byteCount: values.count * 4)
        values.withUnsafeBytes { buffer.pointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        self.init(rows: rows, cols: cols, dtype: .f32, base: UnsafeRawPointer(buffer.pointer), owner: buffer)
    }

    /// Bytes a full pass over the matrix reads (what one GEMV streams).
    public var byteCount: Int { rows * cols * dtype.size }

    /// Whether both matrices view the same memory (tied embeddings).
    public func sharesStorage(with other: WeightMatrix) -> Bool { base == other.base }

    /// Row `index` widened to fp32 (embedding lookup).
    public func row(_ index: Int, into destination: inout [Float], at offset: Int) {
        precondition(index >= 0 && index < rows, "row \(index) outside 0..<\(rows)")
        destination.withUnsafeMutableBufferPointer { out in
            let target = out.baseAddress! + offset
            switch dtype {
            case .f32:
                target.update(from: base.assumingMemoryBound(to: Float.self) + index * cols, count: cols)
            case .bf16:
                pds_bf16_to_f32(base.assumingMemoryBound(to: UInt16.self) + index * cols, target, cols)
            }
        }
    }
}

/// Zeroed, page-aligned memory released on deinit. It comes from an
/// anonymous mapping, so a large KV pool costs nothing until pages are touched.
public final class OwnedBuffer: @unchecked Sendable {
    public let pointer: UnsafeMutableRawPointer
    public let byteCount: Int
    private let mappedLength: Int

    public init(byteCount: Int) {
        self.byteCount = byteCount
        mappedLength = max(byteCount, 1)
        guard let base = mmap(nil, mappedLength, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), base != MAP_FAILED else {
            fatalError("out of memory: could not map \(byteCount) bytes")
        }
        pointer = base
    }

    /// Zeroed memory in a shared-memory file (under /dev/shm) that another
    /// process on this host can map; the file is removed on deinit.
    public init(sharedFile path: String, byteCount: Int) throws {
        self.byteCount = byteCount
        mappedLength = max(byteCount, 1)
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw SharedMemoryError("cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard ftruncate(fd, off_t(mappedLength)) == 0,
              let base = mmap(nil, mappedLength, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), base != MAP_FAILED else {
            unlink(path)
            throw SharedMemoryError("cannot size or map \(path) (\(byteCount) bytes): \(String(cString: strerror(errno)))")
        }
        pointer = base
        sharedPath = path
    }

    /// The shared-memory file behind this buffer, if any.
    public private(set) var sharedPath: String?

    deinit {
        munmap(pointer, mappedLength)
        if let sharedPath { unlink(sharedPath) }
    }
}

/// A shared-memory file could not be created or mapped.
public struct SharedMemoryError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
