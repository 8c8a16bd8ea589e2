import Foundation

/// The architectures PDServe runs. All are Llama-shaped decoders; the
/// differences are switched on by what the checkpoint holds.
public enum Architecture: String, Sendable, CaseIterable {
    case llama = "LlamaForCausalLM"
    case qwen2 = "Qwen2ForCausalLM"
    case qwen3 = "Qwen3ForCausalLM"
    case mistral = "MistralForCausalLM"
}

/// How rotary frequencies are derived from `rope_theta`.
public enum RopeScaling: Sendable, Equatable {
    case none
    case linear(factor: Float)
    case llama3(factor: Float, lowFreqFactor: Float, highFreqFactor: Float, originalMaxPositions: Int)
}

/// The parts of `config.json` the forward pass needs, read from either
/// generation of checkpoints: classic (top-level `rope_theta`,
/// `rope_scaling`) and transformers 5 (`rope_parameters`).
public struct ModelConfig: Sendable {
    public var architecture: Architecture
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var kvHeadCount: Int
    public var headDim: Int
    public var vocabSize: Int
    public var rmsNormEps: Float
    public var ropeTheta: Float
    public var ropeScaling: RopeScaling
    public var maxPositionEmbeddings: Int
    public var tieWordEmbeddings: Bool
    /// Keys attend only the last `slidingWindow` positions (Mistral); nil means all.
    public var slidingWindow: Int?
    public var bosTokenId: Int?
    public var eosTokenIds: [Int]
    /// The dtype the checkpoint declares (informational).
    public var declaredDType: String?

    /// Reads `config.json` from a model folder.
    public init(directory: URL) throws {
        let url = directory.appendingPathComponent("config.json")
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw ModelLoadError(file: url, "missing: every checkpoint folder needs a config.json")
        }
        try self.init(json: data, file: url.path)
    }

    public init(json data: Data, file: String = "config.json") throws {
        guard let obj = try? JSONSerialization.jsonObject(with: data), let json = obj as? [String: Any] else {
            throw ModelLoadError(file: file, "corrupt: not a JSON object")
        }
        let reader = JSONFields(json: json, file: file)
        let names = (json["architectures"] as? [String]) ?? []
        guard let name = names.first else {
            throw ModelLoadError(file: file, "no \"architectures\" entry; supported: \(Architecture.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let arch = Architecture(rawValue: name) else {
            throw ModelLoadError(file: file, "unsupported architecture \(name); supported: \(Architecture.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        architecture = arch
        if let act = json["hidden_act"] as? String, act != "silu" {
            throw ModelLoadError(file: file, "unsupported hidden_act \(act); only silu is implemented")
        }
        hiddenSize = try reader.int("hidden_size")
        intermediateSize = try reader.int("intermediate_size")
        layerCount = try reader.int("num_hidden_layers")
        headCount = try reader.int("num_attention_heads")
        kvHeadCount = reader.optionalInt("num_key_value_heads") ?? headCount
        headDim = reader.optionalInt("head_dim") ?? hiddenSize / headCount
        vocabSize = try reader.int("vocab_size")
        rmsNormEps = Float(reader.optionalDouble("rms_norm_eps") ?? 1e-6)
        maxPositionEmbeddings = reader.optionalInt("max_position_embeddings") ?? 4096
        tieWordEmbeddings = (json["tie_word_embeddings"] as? Bool) ?? false
        bosTokenId = reader.optionalInt("bos_token_id")
        eosTokenIds = reader.intList("eos_token_id")
        declaredDType = (json["dtype"] as? String) ?? (json["torch_dtype"] as? String)
        guard headCount > 0, kvHeadCount > 0, headCount % kvHeadCount == 0 else {
            throw ModelLoadError(file: file, "num_attention_heads \(headCount) is not a multiple of num_key_value_heads \(kvHeadCount)")
        }
        guard headDim > 0, headDim % 2 == 0 else {
            throw ModelLoadError(file: file, "head_dim \(headDim) must be even for rotary embeddings")
        }

        // Rotary parameters: transformers 5 nests them in rope_parameters.
        let rope = (json["rope_parameters"] as? [String: Any]) ?? (json["rope_scaling"] as? [String: Any]) ?? [:]
        ropeTheta = Float((rope["rope_theta"] as? NSNumber)?.doubleValue ?? reader.optionalDouble("rope_theta") ?? 10000)
        let ropeType = (rope["rope_type"] as? String) ?? (rope["type"] as? String) ?? "default"
        let factor = Float((rope["factor"] as? NSNumber)?.doubleValue ?? 1)
        switch ropeType {
        case "default":
            ropeScaling = .none
        case "linear":
            ropeScaling = .linear(factor: factor)
        case "llama3":
            guard let low = (rope["low_freq_factor"] as? NSNumber)?.floatValue,
                  let high = (rope["high_freq_factor"] as? NSNumber)?.floatValue,
                  let original = (rope["original_max_position_embeddings"] as? NSNumber)?.intValue else {
                throw ModelLoadError(file: file, "llama3 rope scaling needs low_freq_factor, high_freq_factor and original_max_position_embeddings")
            }
            ropeScaling = .llama3(factor: factor, lowFreqFactor: low, highFreqFactor: high, originalMaxPositions: original)
        default:
            throw ModelLoadError(file: file, "unsupported rope type \(ropeType); supported: default, linear, llama3")
        }

        // Sliding windows: Mistral declares one; Qwen only uses one when use_sliding_window is set.
        let window = reader.optionalInt("sliding_window")
        switch arch {
        case .mistral:
            slidingWindow = window
        case .qwen2, .qwen3:
            if (json["use_sliding_window"] as? Bool) == true {
                throw ModelLoadError(file: file, "use_sliding_window=true (per-layer sliding windows) is not supported")
            }
            slidingWindow = nil
        case .llama:
            slidingWindow = nil
        }
    }

    /// Rotary inverse frequencies, computed in fp32 as transformers does.
    public var ropeInverseFrequencies: [Float] {
        let half = headDim / 2
        var freqs = (0..<half).map { i -> Float in
            1.0 / powf(ropeTheta, Float(2 * i) / Float(headDim))
        }
        switch ropeScaling {
        case .none:
            break
        case .linear(let factor):
            freqs = freqs.map { $0 / factor }
        case let .llama3(factor, low, high, original):
            let lowWavelen = Float(original) / low
            let highWavelen = Float(original) / high
            freqs = freqs.map { f in
                let wavelen = 2 * Float.pi / f
                if wavelen < highWavelen { return f }
                if wavelen > lowWavelen { return f / factor }
                let smooth = (Float(original) / wavelen - low) / (high - low)
                return (1 - smooth) * f / factor + smooth * f
            }
        }
        return freqs
    }
}

/// Typed reads from a JSON object with errors that name the file and key.
struct JSONFields {
    let json: [String: Any]
    let file: String

    func int(_ key: String) throws -> Int {
        guard let v = optionalInt(key) else { throw ModelLoadError(file: file, "missing or non-integer \"\(key)\"") }
        return v
    }

    func optionalInt(_ key: String) -> Int? {
        guard let n = json[key] as? NSNumber, !(json[key] is Bool) else { return nil }
        return n.intValue
    }

    func optionalDouble(_ key: String) -> Double? { (json[key] as? NSNumber)?.doubleValue }

    func intList(_ key: String) -> [Int] {
        if let list = json[key] as? [NSNumber] { return list.map(\.intValue) }
        if let one = optionalInt(key) { return [one] }
        return []
    }
}
