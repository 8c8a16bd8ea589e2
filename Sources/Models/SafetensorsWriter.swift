import Foundation
import Kernels

/// Writes tensors to a `.safetensors` file (the built-in demo model uses it).
public struct SafetensorsWriter {
    private var entries: [(name: String, dtype: TensorDType, shape: [Int], bytes: Data)] = []

    public init() {}

    /// Adds an fp32 tensor, stored as `dtype` (F32 or BF16).
    public mutating func add(_ name: String, shape: [Int], values: [Float], dtype: TensorDType = .f32) {
        precondition(shape.reduce(1, *) == values.count, "tensor \(name): shape \(shape) does not match \(values.count) values")
        precondition(dtype == .f32 || dtype == .bf16, "only F32 and BF16 are written")
        var bytes: Data
        if dtype == .f32 {
            bytes = values.withUnsafeBytes { Data($0) }
        } else {
            var halves = [UInt16](repeating: 0, count: values.count)
            values.withUnsafeBufferPointer { src in
                halves.withUnsafeMutableBufferPointer { pds_f32_to_bf16(src.baseAddress!, $0.baseAddress!, values.count) }
            }
            bytes = halves.withUnsafeBytes { Data($0) }
        }
        entries.append((name, dtype, shape, bytes))
    }

    public func write(to url: URL) throws {
        var header: [String: Any] = ["__metadata__": ["format": "pt"]]
        var offset = 0
        for e in entries {
            header[e.name] = ["dtype": e.dtype.rawValue, "shape": e.shape, "data_offsets": [offset, offset + e.bytes.count]]
            offset += e.bytes.count
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // Pad the header so tensor data starts 8-byte aligned, as safetensors does.
        while (8 + json.count) % 8 != 0 { json.append(0x20) }
        var file = Data()
        var length = UInt64(json.count).littleEndian
        file.append(Data(bytes: &length, count: 8))
        file.append(json)
        for e in entries { file.append(e.bytes) }
        try file.write(to: url, options: .atomic)
    }
}
