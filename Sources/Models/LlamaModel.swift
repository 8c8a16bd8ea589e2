import Foundation
import Kernels
import Profiling

/// A Llama-family decoder (Llama 2/3, Qwen2, Qwen3, Mistral) running on the
/// CPU in fp32 with fp32 or bf16 weights. Variants differ only in what the
/// checkpoint holds: q/k/v biases (Qwen2), per-head q/k RMSNorm (Qwen3), a
/// sliding window (Mistral), tied or separate output embeddings.
public final class LlamaModel: CausalLM, @unchecked Sendable {
    public static let architectures = ["LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM", "MistralForCausalLM"]

    public let config: ModelConfig
    public let directory: URL
    private let embeddings: WeightMatrix
    private let outputProjection: WeightMatrix
    private let finalNorm: [Float]
    private let layers: [DecoderLayer]
    private let invFreq: [Float]
    /// Keys attend only the last this many positions (Mistral's window; 0: all).
    private let window: Int
    /// How the large linear layers multiply: the requested precision where
    /// this CPU runs it, else fp32 (`MatmulPrecision.effective`).
    public let matmulPrecision: MatmulPrecision

    struct DecoderLayer {
        let inputNorm: [Float]
        let postAttentionNorm: [Float]
        let q, k, v, o: WeightMatrix
        let qBias, kBias, vBias: [Float]?
        let qNorm, kNorm: [Float]?
        let gate, up, down: WeightMatrix
    }

    /// Loads the safetensors weights of a checkpoint folder (`ModelRegistry.load` reads its config).
    public init(config: ModelConfig, directory: URL, matmulPrecision: MatmulPrecision, progress: (Int, Int) -> Void) throws {
        guard Self.architectures.contains(config.architecture) else {
            throw ModelLoadError(file: directory.appendingPathComponent("config.json"), ModelRegistry.unsupported(config.architecture))
        }
        // Only Mistral's attention slides (transformers' Llama and Qwen2/3 attend every position here).
        window = config.architecture == "MistralForCausalLM" ? config.slidingWindow ?? 0 : 0
        let checkpoint = try Checkpoint(directory: directory)
        self.config = config
        self.directory = directory
        let precision = matmulPrecision.effective
        self.matmulPrecision = precision
        let h = config.hiddenSize, qDim = config.headCount * config.headDim, kvDim = config.kvHeadCount * config.headDim
        embeddings = try checkpoint.matrix("model.embed_tokens.weight", rows: config.vocabSize, cols: h)
        if checkpoint.contains("lm_head.weight") && !config.tieWordEmbeddings {
            outputProjection = try checkpoint.matrix("lm_head.weight", rows: config.vocabSize, cols: h).packedForLinear(precision: precision)
        } else {
            // Tied: the embedding keeps its row-major mapping for lookups; the LM head gets its own packed copy.
            outputProjection = embeddings.packedForLinear(precision: precision)
        }
        finalNorm = try checkpoint.vector("model.norm.weight", count: h)
        var layers: [DecoderLayer] = []
        for i in 0..<config.layerCount {
            let p = "model.layers.\(i)."
            func optionalVector(_ name: String, _ count: Int) throws -> [Float]? {
                checkpoint.contains(p + name) ? try checkpoint.vector(p + name, count: count) : nil
            }
            layers.append(DecoderLayer(
                inputNorm: try checkpoint.vector(p + "input_layernorm.weight", count: h),
                postAttentionNorm: try checkpoint.vector(p + "post_attention_layernorm.weight", count: h),
                q: try checkpoint.matrix(p + "self_attn.q_proj.weight", rows: qDim, cols: h).packedForLinear(precision: precision),
                k: try checkpoint.matrix(p + "self_attn.k_proj.weight", rows: kvDim, cols: h).packedForLinear(precision: precision),
                v: try checkpoint.matrix(p + "self_attn.v_proj.weight", rows: kvDim, cols: h).packedForLinear(precision: precision),
                o: try checkpoint.matrix(p + "self_attn.o_proj.weight", rows: h, cols: qDim).packedForLinear(precision: precision),
                qBias: try optionalVector("self_attn.q_proj.bias", qDim),
                kBias: try optionalVector("self_attn.k_proj.bias", kvDim),
                vBias: try optionalVector("self_attn.v_proj.bias", kvDim),
                qNorm: try optionalVector("self_attn.q_norm.weight", config.headDim),
                kNorm: try optionalVector("self_attn.k_norm.weight", config.headDim),
                gate: try checkpoint.matrix(p + "mlp.gate_proj.weight", rows: config.intermediateSize, cols: h).packedForLinear(precision: precision),
                up: try checkpoint.matrix(p + "mlp.up_proj.weight", rows: config.intermediateSize, cols: h).packedForLinear(precision: precision),
                down: try checkpoint.matrix(p + "mlp.down_proj.weight", rows: h, cols: config.intermediateSize).packedForLinear(precision: precision)
            ))
            progress(i + 1, config.layerCount)
        }
        self.layers = layers
        invFreq = config.ropeInverseFrequencies
    }

    /// Parameters (for reports).
    public var parameterCount: Int {
        let c = config
        let attn = c.hiddenSize * (c.headCount + 2 * c.kvHeadCount) * c.headDim + c.headCount * c.headDim * c.hiddenSize
        let mlp = 3 * c.hiddenSize * c.intermediateSize
        let embed = c.vocabSize * c.hiddenSize * (outputProjection.sharesStorage(with: embeddings) ? 1 : 2)
        return c.layerCount * (attn + mlp + 2 * c.hiddenSize) + embed + c.hiddenSize
    }

    /// Weight bytes one forward step streams through its linear layers for a
    /// single token: every projection of every layer plus the LM head (the
    /// embedding is only gathered, one row per token).
    public var linearWeightBytesPerToken: Int {
        let perLayer = layers.reduce(0) { total, l in
            total + [l.q, l.k, l.v, l.o, l.gate, l.up, l.down].reduce(0) { $0 + $1.byteCount }
        }
        return perLayer + outputProjection.byteCount
    }

    /// Memory the panel-packed weight copies take beyond the checkpoint's mapping.
    public var packedWeightBytes: Int {
        layers.reduce(outputProjection.packedByteCount) { total, l in
            total + [l.q, l.k, l.v, l.o, l.gate, l.up, l.down].reduce(0) { $0 + $1.packedByteCount }
        }
    }

    /// The element type of the projection weights, for reports.
    public var weightDTypeName: String { layers.first?.q.dtype.rawValue ?? outputProjection.dtype.rawValue }

    /// Element width of one token's K (or V) row in the cache.
    var kvWidth: Int { config.kvHeadCount * config.headDim }

    public func kvCacheSpec(dtype: DType) -> KVCacheSpec { .keyValue(layers: config.layerCount, width: kvWidth, dtype: dtype) }

    public func forward(_ batch: ForwardBatch, cache: PagedKVStorage, pool: ComputePool, trace: TraceRecorder?) -> [Float] {
        let c = config
        let t = batch.tokens.count
        precondition(t > 0, "empty forward batch")
        let h = c.hiddenSize, qDim = c.headCount * c.headDim, kvDim = kvWidth
        var x = [Float](repeating: 0, count: t * h)
        for (i, token) in batch.tokens.enumerated() {
            embeddings.row(Int(token), into: &x, at: i * h)
        }
        var normed = [Float](repeating: 0, count: t * h)
        var q = [Float](repeating: 0, count: t * qDim)
        var k = [Float](repeating: 0, count: t * kvDim)
        var v = [Float](repeating: 0, count: t * kvDim)
        var attention = [Float](repeating: 0, count: t * qDim)
        var projected = [Float](repeating: 0, count: t * h)
        var gate = [Float](repeating: 0, count: t * c.intermediateSize)
        var up = [Float](repeating: 0, count: t * c.intermediateSize)
        let scale = 1 / Float(c.headDim).squareRoot()
        let rows: TraceValue = .int(t)

        /// `body` as a span of `trace` when profiling; just `body` otherwise.
        func timed(_ name: String, _ layer: Int, _ body: () -> Void) {
            guard let trace else { return body() }
            let start = TraceClock.now()
            body()
            trace.span(name, category: "forward", from: start, args: ["layer": .int(layer), "tokens": rows])
        }

        for (index, layer) in layers.enumerated() {
            timed("layer", index) {
                timed("self_attn", index) {
                    timed("rms_norm", index) { Kernels.rmsNorm(x, weight: layer.inputNorm, eps: c.rmsNormEps, into: &normed) }
                    timed("q_proj", index) { pool.linear(normed, rows: t, weight: layer.q, bias: layer.qBias, precision: matmulPrecision, into: &q) }
                    timed("k_proj", index) { pool.linear(normed, rows: t, weight: layer.k, bias: layer.kBias, precision: matmulPrecision, into: &k) }
                    timed("v_proj", index) { pool.linear(normed, rows: t, weight: layer.v, bias: layer.vBias, precision: matmulPrecision, into: &v) }
                    timed("rope", index) {
                        if let qNorm = layer.qNorm { Kernels.rmsNormInPlace(&q, weight: qNorm, eps: c.rmsNormEps) }
                        if let kNorm = layer.kNorm { Kernels.rmsNormInPlace(&k, weight: kNorm, eps: c.rmsNormEps) }
                        Kernels.rope(&q, heads: c.headCount, headDim: c.headDim, positions: batch.positions, invFreq: invFreq)
                        Kernels.rope(&k, heads: c.kvHeadCount, headDim: c.headDim, positions: batch.positions, invFreq: invFreq)
                    }
                    timed("kv_store", index) { cache.store(layer: index, keys: k, values: v, slots: batch.slots) }
                    timed("attention", index) {
                        pool.attention(q: q, spans: batch.spans, heads: c.headCount, kvHeads: c.kvHeadCount, headDim: c.headDim,
                                       cache: cache, layer: index, window: window, scale: scale, into: &attention)
                    }
                    timed("o_proj", index) { pool.linear(attention, rows: t, weight: layer.o, bias: nil, precision: matmulPrecision, into: &projected) }
                    Kernels.add(&x, projected)
                }
                timed("mlp", index) {
                    timed("rms_norm", index) { Kernels.rmsNorm(x, weight: layer.postAttentionNorm, eps: c.rmsNormEps, into: &normed) }
                    timed("gate_proj", index) { pool.linear(normed, rows: t, weight: layer.gate, bias: nil, precision: matmulPrecision, into: &gate) }
                    timed("up_proj", index) { pool.linear(normed, rows: t, weight: layer.up, bias: nil, precision: matmulPrecision, into: &up) }
                    timed("silu_mul", index) { Kernels.siluMul(gate: gate, &up) }
                    timed("down_proj", index) { pool.linear(up, rows: t, weight: layer.down, bias: nil, precision: matmulPrecision, into: &projected) }
                    Kernels.add(&x, projected)
                }
            }
        }

        let logitRows = batch.logitRows
        guard !logitRows.isEmpty else { return [] }
        var last = [Float](repeating: 0, count: logitRows.count * h)
        for (i, row) in logitRows.enumerated() {
            last.replaceSubrange(i * h..<(i + 1) * h, with: x[row * h..<(row + 1) * h])
        }
        var lastNormed = [Float](repeating: 0, count: logitRows.count * h)
        var logits = [Float](repeating: 0, count: logitRows.count * c.vocabSize)
        timed("lm_head", layers.count) {
            Kernels.rmsNorm(last, weight: finalNorm, eps: c.rmsNormEps, into: &lastNormed)
            pool.linear(lastNormed, rows: logitRows.count, weight: outputProjection, bias: nil, precision: matmulPrecision, into: &logits)
        }
        return logits
    }
}
