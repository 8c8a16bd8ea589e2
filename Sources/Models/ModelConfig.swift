import ByteExactJSON
import Foundation

/// How rotary frequencies are derived from `rope_theta`.
public enum RopeScaling: Sendable, Equatable {
    case none
    case linear(factor: Float)
    case llama3(factor: Float, lowFreqFactor: Float, highFreqFactor: Float, originalMaxPositions: Int)
}

/// The fields of `config.json` every family shares, read from either
/// generation of checkpoints: classic (top-level `rope_theta`,
/// `rope_scaling`) and transformers 5 (`rope_parameters`). Which family
/// runs it is `ModelRegistry`'s to say, from `architecture`.
public struct ModelConfig: Sendable {
    /// config.json's first `architectures` entry, e.g. "Qwen2ForCausalLM".
    public var architecture: String
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
    /// The window config.json declares for sliding-window attention, unless
    /// `use_sliding_window` is false (Qwen declares one it does not use); a
    /// family decides whether its attention applies it.
    public var slidingWindow: Int?
    public var bosTokenId: Int?
    public var eosTokenIds: [Int]
    /// The dtype the checkpoint declares (informational).
    public var declaredDType: String?
    /// The whole of config.json, for the fields only one family reads
    /// (experts, latent ranks): `config.fields.optionalInt("num_experts")`.
    let fields: JSONFields

    /// Reads `config.json` from a model folder, and the end-of-sequence ids
    /// of `generation_config.json` beside it: like vLLM and SGLang, EOS is
    /// either file's ids (instruct checkpoints often list `<|eot_id|>` only there).
    public init(directory: URL) throws {
        let url = directory.appendingPathComponent("config.json")
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw ModelLoadError(file: url, "missing: every checkpoint folder needs a config.json")
        }
        try self.init(json: data, file: url.path)
        let generationURL = directory.appendingPathComponent("generation_config.json")
        if let generation = FileManager.default.contents(atPath: generationURL.path) {
            let fields = try JSONFields(data: generation, file: generationURL.path)
            for id in try fields.intList("eos_token_id") where !eosTokenIds.contains(id) { eosTokenIds.append(id) }
        }
    }

    public init(json data: Data, file: String = "config.json") throws {
        let reader = try JSONFields(data: data, file: file)
        fields = reader
        let names = try reader.stringList("architectures")
        guard let name = names.first else {
            throw ModelLoadError(file: file, "no \"architectures\" entry; supported: \(ModelRegistry.supportedArchitectures.joined(separator: ", "))")
        }
        architecture = name
        if let act = try reader.optionalString("hidden_act"), act != "silu" {
            throw ModelLoadError(file: file, "unsupported hidden_act \(act); only silu is implemented")
        }
        hiddenSize = try reader.int("hidden_size")
        intermediateSize = try reader.int("intermediate_size")
        layerCount = try reader.int("num_hidden_layers")
        headCount = try reader.int("num_attention_heads")
        kvHeadCount = try reader.optionalInt("num_key_value_heads") ?? headCount
        headDim = try reader.optionalInt("head_dim") ?? hiddenSize / max(1, headCount)
        vocabSize = try reader.int("vocab_size")
        rmsNormEps = Float(try reader.optionalDouble("rms_norm_eps") ?? 1e-6)
        maxPositionEmbeddings = try reader.optionalInt("max_position_embeddings") ?? 4096
        tieWordEmbeddings = try reader.optionalBool("tie_word_embeddings") ?? false
        bosTokenId = try reader.optionalInt("bos_token_id")
        eosTokenIds = try reader.intList("eos_token_id")
        declaredDType = try reader.optionalString("dtype") ?? reader.optionalString("torch_dtype")
        for (key, value) in [("hidden_size", hiddenSize), ("intermediate_size", intermediateSize), ("num_hidden_layers", layerCount),
                             ("vocab_size", vocabSize)] where value <= 0 {
            throw ModelLoadError(file: file, "\"\(key)\" must be positive, not \(value)")
        }
        guard headCount > 0, kvHeadCount > 0, headCount % kvHeadCount == 0 else {
            throw ModelLoadError(file: file, "num_attention_heads \(headCount) is not a multiple of num_key_value_heads \(kvHeadCount)")
        }
        guard headDim > 0, headDim % 2 == 0 else {
            throw ModelLoadError(file: file, "head_dim \(headDim) must be even for rotary embeddings")
        }

        // Rotary parameters: transformers 5 nests them in rope_parameters.
        let rope = try reader.optionalObject("rope_parameters") ?? reader.optionalObject("rope_scaling") ?? JSONFields(file: file)
        ropeTheta = Float(try rope.optionalDouble("rope_theta") ?? reader.optionalDouble("rope_theta") ?? 10000)
        let ropeType = try rope.optionalString("rope_type") ?? rope.optionalString("type") ?? "default"
        let factor = Float(try rope.optionalDouble("factor") ?? 1)
        switch ropeType {
        case "default":
            ropeScaling = .none
        case "linear":
            ropeScaling = .linear(factor: factor)
        case "llama3":
            guard let low = try rope.optionalDouble("low_freq_factor"),
                  let high = try rope.optionalDouble("high_freq_factor"),
                  let original = try rope.optionalInt("original_max_position_embeddings") else {
                throw ModelLoadError(file: file, "llama3 rope scaling needs low_freq_factor, high_freq_factor and original_max_position_embeddings")
            }
            ropeScaling = .llama3(factor: factor, lowFreqFactor: Float(low), highFreqFactor: Float(high), originalMaxPositions: original)
        default:
            throw ModelLoadError(file: file, "unsupported rope type \(ropeType); supported: default, linear, llama3")
        }

        // Sliding windows: Mistral declares one; Qwen declares one and uses it only with use_sliding_window.
        let window = try reader.optionalInt("sliding_window")
        switch try reader.optionalBool("use_sliding_window") {
        case true?: throw ModelLoadError(file: file, "use_sliding_window=true (per-layer sliding windows) is not supported")
        case false?: slidingWindow = nil
        case nil: slidingWindow = window
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

/// Typed reads from a JSON object, with errors that name the file and key.
/// Numbers and booleans are distinct JSON types here (Foundation's
/// `NSNumber` bridging reads 0, 1 and 1.0 as booleans on Linux), and a key
/// that is present with the wrong type is an error, not a default.
struct JSONFields: Sendable {
    let object: JSONValue
    let file: String

    init(data: Data, file: String) throws {
        let value: JSONValue
        do {
            value = try JSONParser.parse(data)
        } catch {
            throw ModelLoadError(file: file, "corrupt: \(error)")
        }
        guard case .object = value else { throw ModelLoadError(file: file, "corrupt: not a JSON object") }
        self.init(object: value, file: file)
    }

    init(object: JSONValue, file: String) {
        self.object = object
        self.file = file
    }

    /// An empty object (a missing optional section).
    init(file: String) { self.init(object: .object(keys: [], values: []), file: file) }

    /// The member, or nil when absent or JSON null.
    private func member(_ key: String) -> JSONValue? {
        guard let value = object[key], !value.isNull else { return nil }
        return value
    }

    private func wrongType(_ key: String, _ expected: String) -> ModelLoadError {
        ModelLoadError(file: file, "\"\(key)\" must be \(expected)")
    }

    func int(_ key: String) throws -> Int {
        guard let v = try optionalInt(key) else { throw ModelLoadError(file: file, "missing or non-integer \"\(key)\"") }
        return v
    }

    func optionalInt(_ key: String) throws -> Int? {
        guard let value = member(key) else { return nil }
        guard let int = value.intValue else { throw wrongType(key, "an integer") }
        return int
    }

    func optionalDouble(_ key: String) throws -> Double? {
        guard let value = member(key) else { return nil }
        guard let double = value.doubleValue else { throw wrongType(key, "a number") }
        return double
    }

    func optionalBool(_ key: String) throws -> Bool? {
        guard let value = member(key) else { return nil }
        guard let bool = value.boolValue else { throw wrongType(key, "true or false") }
        return bool
    }

    func optionalString(_ key: String) throws -> String? {
        guard let value = member(key) else { return nil }
        guard let string = value.stringValue else { throw wrongType(key, "a string") }
        return string
    }

    func optionalObject(_ key: String) throws -> JSONFields? {
        guard let value = member(key) else { return nil }
        guard case .object = value else { throw wrongType(key, "an object") }
        return JSONFields(object: value, file: file)
    }

    func stringList(_ key: String) throws -> [String] {
        guard let value = member(key) else { return [] }
        guard let list = value.arrayValue, let strings = Optional(list.compactMap(\.stringValue)), strings.count == list.count else {
            throw wrongType(key, "a list of strings")
        }
        return strings
    }

    /// One integer or a list of them (`eos_token_id` takes both forms).
    func intList(_ key: String) throws -> [Int] {
        guard let value = member(key) else { return [] }
        if let one = value.intValue { return [one] }
        guard let list = value.arrayValue, let ints = Optional(list.compactMap(\.intValue)), ints.count == list.count else {
            throw wrongType(key, "an integer or a list of integers")
        }
        return ints
    }
}
