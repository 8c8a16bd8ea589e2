import Foundation
import Kernels
import Profiling

/// A decoder-only language model as the engine, server, PD setup and
/// benchmarks hold it: its config, what it caches per token, one forward
/// over a batch, and the figures reports quote. A family conforms once and
/// adds one line to `ModelRegistry.families`; nothing else names it.
public protocol CausalLM: AnyObject, Sendable {
    /// config.json `architectures` strings this family loads.
    static var architectures: [String] { get }

    /// Loads a checkpoint folder whose config.json names one of `architectures`.
    /// `progress` is called after each layer with (loaded, total).
    init(config: ModelConfig, directory: URL, matmulPrecision: MatmulPrecision, progress: (Int, Int) -> Void) throws

    var config: ModelConfig { get }
    /// How the large linear layers multiply: the requested precision where
    /// this CPU runs it, else fp32 (`MatmulPrecision.effective`).
    var matmulPrecision: MatmulPrecision { get }

    /// What one token leaves in the cache of every layer, stored as `dtype`.
    func kvCacheSpec(dtype: DType) -> KVCacheSpec

    /// Runs the batch, writing its cache entries into `cache`, and returns
    /// `[batch.logitRows.count, vocabSize]` logits. With `trace`, layers,
    /// blocks and kernels become spans (a profiled step).
    func forward(_ batch: ForwardBatch, cache: PagedKVStorage, pool: ComputePool, trace: TraceRecorder?) -> [Float]

    /// Parameters (for reports).
    var parameterCount: Int { get }
    /// Weight bytes one forward step streams through its linear layers for one token.
    var linearWeightBytesPerToken: Int { get }
    /// Memory the panel-packed weight copies take beyond the checkpoint's mapping.
    var packedWeightBytes: Int { get }
    /// The element type of the projection weights, for reports.
    var weightDTypeName: String { get }
}

extension CausalLM {
    public func forward(_ batch: ForwardBatch, cache: PagedKVStorage, pool: ComputePool) -> [Float] {
        forward(batch, cache: cache, pool: pool, trace: nil)
    }
}
