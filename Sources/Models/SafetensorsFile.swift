import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Element types a safetensors tensor may declare.
public enum TensorDType: String, Sendable {
    case f32 = "F32", bf16 = "BF16", f16 = "F16", f64 = "F64"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"

    public var size: Int {
        switch self {
        case .f64, .i64: 8
        case .f32, .i32: 4
        case .bf16, .f16, .i16: 2
        case .i8, .u8, .bool: 1
        }
    }
}

/// One tensor's entry in a safetensors header.
public struct TensorInfo: Sendable {
    public let dtype: TensorDType
    public let shape: [Int]
    /// Byte range inside the data section.
    public let byteRange: Range<Int>
    public var elementCount: Int { shape.reduce(1, *) }
}

/// A memory-mapped `.safetensors` file: an 8-byte little-endian header
/// length, a JSON header, then the raw tensor bytes. Tensors are read in
/// place from the mapping; nothing is copied at load.
public final class SafetensorsFile: @unchecked Sendable {
    public let url: URL
    public let tensors: [String: TensorInfo]
    public let metadata: [String: String]
    private let mapping: UnsafeMutableRawPointer
    private let mappedLength: Int
    private let dataStart: Int

    public init(url: URL) throws {
        self.url = url
        let fd = open(url.path, O_RDONLY)
        guard fd >= 0 else { throw ModelLoadError(file: url, "cannot open (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw ModelLoadError(file: url, "cannot stat") }
        let length = Int(info.st_size)
        guard length >= 8 else { throw ModelLoadError(file: url, "truncated: \(length) bytes, no safetensors header") }
        guard let base = mmap(nil, length, PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else {
            throw ModelLoadError(file: url, "mmap failed (\(String(cString: strerror(errno))))")
        }
        mapping = base
        mappedLength = length
        do {
            let headerLength = Int(UInt64(littleEndian: base.loadUnaligned(as: UInt64.self)))
            guard headerLength > 0, headerLength <= length - 8 else {
                throw ModelLoadError(file: url, "corrupt: header length \(headerLength) does not fit in a \(length)-byte file")
            }
            dataStart = 8 + headerLength
            let headerData = Data(bytes: base + 8, count: headerLength)
            guard let header = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any] else {
                throw ModelLoadError(file: url, "corrupt: header is not a JSON object")
            }
            (tensors, metadata) = try Self.parse(header: header, dataLength: length - dataStart, url: url)
        } catch {
            munmap(base, length)
            throw error
        }
    }

    deinit { munmap(mapping, mappedLength) }

    private static func parse(header: [String: Any], dataLength: Int, url: URL) throws -> ([String: TensorInfo], [String: String]) {
        var tensors: [String: TensorInfo] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in header {
            if name == "__metadata__" {
                metadata = (value as? [String: String]) ?? [:]
                continue
            }
            guard let entry = value as? [String: Any],
                  let dtypeName = entry["dtype"] as? String,
                  let shape = entry["shape"] as? [Int],
                  let offsets = entry["data_offsets"] as? [Int], offsets.count == 2 else {
                throw ModelLoadError(file: url, "corrupt: header entry for tensor '\(name)' lacks dtype, shape or data_offsets")
            }
            guard let dtype = TensorDType(rawValue: dtypeName) else {
                throw ModelLoadError(file: url, "tensor '\(name)' has unsupported dtype \(dtypeName)")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, begin <= end, end <= dataLength else {
                throw ModelLoadError(file: url, "corrupt: tensor '\(name)' bytes \(begin)..<\(end) lie outside the \(dataLength)-byte data section (truncated file?)")
            }
            let expected = shape.reduce(1, *) * dtype.size
            guard expected == end - begin else {
                throw ModelLoadError(file: url, "corrupt: tensor '\(name)' of shape \(shape) \(dtypeName) needs \(expected) bytes, header gives \(end - begin)")
            }
            tensors[name] = TensorInfo(dtype: dtype, shape: shape, byteRange: begin..<end)
        }
        return (tensors, metadata)
    }

    /// The bytes of a tensor inside the mapping. Valid while this file lives.
    public func bytes(of info: TensorInfo) -> UnsafeRawPointer {
        UnsafeRawPointer(mapping + dataStart + info.byteRange.lowerBound)
    }
}
