import Foundation
import Kernels
import Models
import Profiling

/// A `CausalLM` whose cache is not "K then V of one width": per layer three
/// tensors of unequal widths and mixed dtypes (24 × the pool's dtype,
/// 16 × fp32, 8 × bf16), as an MLA-like cache has. Each token leaves bytes
/// that depend on its id, position, layer, tensor and element, and the next
/// token is a hash of every byte its sequence has in the pool so far, read
/// back through its page table. A page moved or landed wrong anywhere — a
/// PD transfer, the shm copy, a one-sided write — changes the tokens.
public final class SpecProbeModel: CausalLM, @unchecked Sendable {
    public static let architectures = ["SpecProbeForCausalLM"]
    public let config: ModelConfig
    public let matmulPrecision = MatmulPrecision.fp32

    public init(config: ModelConfig, directory: URL, matmulPrecision: MatmulPrecision, progress: (Int, Int) -> Void) throws {
        self.config = config
    }

    /// A probe of `layers` layers over a vocabulary of `vocabSize` ids.
    public convenience init(vocabSize: Int, layers: Int = 2) throws {
        let json = #"{"architectures": ["SpecProbeForCausalLM"], "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": \#(layers), "#
            + #""num_attention_heads": 2, "vocab_size": \#(vocabSize), "max_position_embeddings": 4096}"#
        try self.init(config: ModelConfig(json: Data(json.utf8)), directory: URL(fileURLWithPath: "/"), matmulPrecision: .fp32) { _, _ in }
    }

    public func kvCacheSpec(dtype: DType) -> KVCacheSpec {
        KVCacheSpec(layers: config.layerCount, tensors: [
            .init(name: "latent", elementsPerToken: 24, dtype: dtype),
            .init(name: "rope_k", elementsPerToken: 16, dtype: .f32),
            .init(name: "scale", elementsPerToken: 8, dtype: .bf16),
        ])
    }

    public func forward(_ batch: ForwardBatch, cache: PagedKVStorage, pool: ComputePool, trace: TraceRecorder?) -> [Float] {
        let tensors = cache.spec.tensors
        for (i, slot) in batch.slots.enumerated() {
            for layer in 0..<cache.layers {
                for (t, tensor) in tensors.enumerated() {
                    let row = cache.buffer(layer: layer, tensor: t) + Int(slot) * tensor.bytesPerToken
                    for e in 0..<tensor.bytesPerToken {
                        let value = UInt32(bitPattern: batch.tokens[i]) &* 2_654_435_761 ^ UInt32(bitPattern: batch.positions[i]) &* 40_503
                            ^ UInt32(layer &* 97 &+ t &* 31 &+ e)
                        row.storeBytes(of: UInt8(truncatingIfNeeded: value ^ (value >> 13)), toByteOffset: e, as: UInt8.self)
                    }
                }
            }
        }
        var logits = [Float](repeating: 0, count: batch.logitRows.count * config.vocabSize)
        for (r, row) in batch.logitRows.enumerated() {
            guard let span = batch.spans.first(where: { $0.tokenOffset <= row && row < $0.tokenOffset + $0.tokenCount }) else { continue }
            let position = span.startPosition + (row - span.tokenOffset)
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for p in 0...position {
                let slot = Int(span.pageTable[p / cache.pageSize]) * cache.pageSize + p % cache.pageSize
                for layer in 0..<cache.layers {
                    for (t, tensor) in tensors.enumerated() {
                        let bytes = UnsafeRawBufferPointer(start: cache.buffer(layer: layer, tensor: t) + slot * tensor.bytesPerToken, count: tensor.bytesPerToken)
                        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
                    }
                }
            }
            logits[r * config.vocabSize + Int(hash % UInt64(config.vocabSize))] = 1
        }
        return logits
    }

    public var parameterCount: Int { 0 }
    public var linearWeightBytesPerToken: Int { 0 }
    public var packedWeightBytes: Int { 0 }
    public var weightDTypeName: String { "none" }
}
