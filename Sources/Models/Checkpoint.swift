import Foundation
import Kernels

/// The weights of a Hugging Face checkpoint folder: `model.safetensors`, or
/// shards listed by `model.safetensors.index.json`. Tensors are looked up by
/// name and handed out as fp32 vectors or as weight matrices that borrow the
/// memory mapping (fp32, bf16) or own a widened copy (fp16).
public final class Checkpoint: @unchecked Sendable {
    public let directory: URL
    private var location: [String: SafetensorsFile] = [:]

    public init(directory: URL) throws {
        self.directory = directory
        let fm = FileManager.default
        let indexURL = directory.appendingPathComponent("model.safetensors.index.json")
        let singleURL = directory.appendingPathComponent("model.safetensors")
        if fm.fileExists(atPath: indexURL.path) {
            guard let data = fm.contents(atPath: indexURL.path),
                  let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let weightMap = json["weight_map"] as? [String: String] else {
                throw ModelLoadError(file: indexURL, "corrupt: expected a JSON object with a \"weight_map\" of tensor name → shard file")
            }
            var shards: [String: SafetensorsFile] = [:]
            for shardName in Set(weightMap.values).sorted() {
                let shardURL = directory.appendingPathComponent(shardName)
                guard fm.fileExists(atPath: shardURL.path) else {
                    throw ModelLoadError(file: shardURL, "missing: shard listed in model.safetensors.index.json")
                }
                shards[shardName] = try SafetensorsFile(url: shardURL)
            }
            for (tensor, shardName) in weightMap {
                guard let shard = shards[shardName], shard.tensors[tensor] != nil else {
                    throw ModelLoadError(file: directory.appendingPathComponent(shardName), "missing tensor '\(tensor)' that model.safetensors.index.json places there")
                }
                location[tensor] = shard
            }
        } else if fm.fileExists(atPath: singleURL.path) {
            let file = try SafetensorsFile(url: singleURL)
            for name in file.tensors.keys { location[name] = file }
        } else {
            throw ModelLoadError(file: directory, "no model.safetensors or model.safetensors.index.json in this folder")
        }
    }

    public var tensorNames: [String] { location.keys.sorted() }

    public func contains(_ name: String) -> Bool { location[name] != nil }

    private func lookup(_ name: String, shape: [Int]) throws -> (SafetensorsFile, TensorInfo) {
        guard let file = location[name], let info = file.tensors[name] else {
            throw ModelLoadError(file: directory, "missing tensor '\(name)'")
        }
        guard info.shape == shape else {
            throw ModelLoadError(file: file.url, "tensor '\(name)' has shape \(info.shape), config.json implies \(shape)")
        }
        return (file, info)
    }

    /// A `[rows, cols]` matrix: zero-copy for fp32 and bf16 when aligned, an owned fp32 copy otherwise.
    public func matrix(_ name: String, rows: Int, cols: Int) throws -> WeightMatrix {
        let (file, info) = try lookup(name, shape: [rows, cols])
        let source = file.bytes(of: info)
        switch info.dtype {
        case .f32 where Int(bitPattern: source) % 4 == 0:
            return WeightMatrix(rows: rows, cols: cols, dtype: .f32, base: source, owner: file)
        case .bf16 where Int(bitPattern: source) % 2 == 0:
            return WeightMatrix(rows: rows, cols: cols, dtype: .bf16, base: source, owner: file)
        case .bf16:
            let copy = OwnedBuffer(byteCount: info.byteRange.count)
            copy.pointer.copyMemory(from: source, byteCount: info.byteRange.count)
            return WeightMatrix(rows: rows, cols: cols, dtype: .bf16, base: UnsafeRawPointer(copy.pointer), owner: copy)
        case .f32, .f16, .f64:
            let values = try floats(info, source, name: name, file: file)
            return WeightMatrix(rows: rows, cols: cols, values: values)
        default:
            throw ModelLoadError(file: file.url, "tensor '\(name)' has dtype \(info.dtype.rawValue); weights must be F32, BF16 or F16")
        }
    }

    /// A tensor of `count` values widened to fp32 (norm weights, biases).
    public func vector(_ name: String, count: Int) throws -> [Float] {
        let (file, info) = try lookup(name, shape: [count])
        return try floats(info, file.bytes(of: info), name: name, file: file)
    }

    private func floats(_ info: TensorInfo, _ source: UnsafeRawPointer, name: String, file: SafetensorsFile) throws -> [Float] {
        let n = info.elementCount
        return try [Float](unsafeUninitializedCapacity: n) { out, initialized in
            switch info.dtype {
            case .f32:
                UnsafeMutableRawPointer(out.baseAddress!).copyMemory(from: source, byteCount: n * 4)
            case .bf16, .f16:
                let halves = UnsafeMutableBufferPointer<UInt16>.allocate(capacity: n)
                defer { halves.deallocate() }
                UnsafeMutableRawPointer(halves.baseAddress!).copyMemory(from: source, byteCount: n * 2)
                if info.dtype == .bf16 { pds_bf16_to_f32(halves.baseAddress!, out.baseAddress!, n) }
                else { pds_f16_to_f32(halves.baseAddress!, out.baseAddress!, n) }
            case .f64:
                for i in 0..<n { out[i] = Float(source.loadUnaligned(fromByteOffset: i * 8, as: Double.self)) }
            default:
                throw ModelLoadError(file: file.url, "tensor '\(name)' has dtype \(info.dtype.rawValue); expected a float type")
            }
            initialized = n
        }
    }
}
