import Foundation
import Tokenization

/// The built-in demo model: a tiny Llama-architecture checkpoint with
/// RANDOM weights and a byte-level tokenizer, written by PDServe itself so
/// the main job needs no download. Its output is random printable text; it
/// exists to exercise the whole serving path, not to say anything.
public enum DemoModel {
    /// Name users pass as `--model-path demo`.
    public static let name = "demo"
    static let version = "v1"
    static let hidden = 256, intermediate = 688, layers = 4, heads = 8, kvHeads = 4
    static let specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"]
    static var vocab: Int { 256 + specials.count }

    /// Where the demo checkpoint lives: `$PDSERVE_CACHE_DIR`, else `$XDG_CACHE_HOME/pdserve`, else `~/.cache/pdserve`.
    public static var cacheDirectory: URL {
        let env = ProcessInfo.processInfo.environment
        if let dir = env["PDSERVE_CACHE_DIR"], !dir.isEmpty { return URL(fileURLWithPath: dir) }
        if let xdg = env["XDG_CACHE_HOME"], !xdg.isEmpty { return URL(fileURLWithPath: xdg).appendingPathComponent("pdserve") }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/pdserve")
    }

    /// The demo checkpoint folder, generated on first use. Safe when several
    /// processes ask at once: each writes a private folder and renames it in place.
    public static func ensure() throws -> URL {
        let target = cacheDirectory.appendingPathComponent("demo-\(version)")
        let fm = FileManager.default
        if fm.fileExists(atPath: target.appendingPathComponent("model.safetensors").path) { return target }
        try fm.createDirectory(at: cacheDirectory, withIntermediateDirectories: true)
        let staging = cacheDirectory.appendingPathComponent(".demo-\(version)-\(getpid())-\(UInt32.random(in: 0 ... .max))")
        try fm.createDirectory(at: staging, withIntermediateDirectories: true)
        defer { try? fm.removeItem(at: staging) }
        try write(to: staging)
        do {
            try fm.moveItem(at: staging, to: target)
        } catch where fm.fileExists(atPath: target.appendingPathComponent("model.safetensors").path) {
            // Another process finished first; its copy is identical.
        }
        return target
    }

    /// Writes config, tokenizer and deterministic weights into `directory`.
    public static func write(to directory: URL) throws {
        let bos = 256, eos = [257, 258]
        let config: [String: Any] = [
            "architectures": ["LlamaForCausalLM"], "model_type": "llama",
            "hidden_size": hidden, "intermediate_size": intermediate, "num_hidden_layers": layers,
            "num_attention_heads": heads, "num_key_value_heads": kvHeads, "head_dim": hidden / heads,
            "vocab_size": vocab, "max_position_embeddings": 4096, "rms_norm_eps": 1e-5,
            "rope_theta": 10000.0, "tie_word_embeddings": false, "hidden_act": "silu",
            "bos_token_id": bos, "eos_token_id": eos, "torch_dtype": "bfloat16",
        ]
        try json(config).write(to: directory.appendingPathComponent("config.json"))
        try json(["bos_token_id": bos, "eos_token_id": eos, "do_sample": false]).write(to: directory.appendingPathComponent("generation_config.json"))
        try json(tokenizerJSON()).write(to: directory.appendingPathComponent("tokenizer.json"))
        let template = """
        {{- bos_token }}{%- for message in messages %}{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}
        """
        try json([
            "bos_token": specials[0], "eos_token": specials[2], "add_bos_token": true,
            "model_max_length": 4096, "tokenizer_class": "PreTrainedTokenizerFast", "chat_template": template,
        ]).write(to: directory.appendingPathComponent("tokenizer_config.json"))
        try weights().write(to: directory.appendingPathComponent("model.safetensors"))
    }

    private static func json(_ object: Any) throws -> Data {
        try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    }

    private static func tokenizerJSON() -> [String: Any] {
        var vocabulary: [String: Int] = [:]
        for byte in 0..<256 { vocabulary[String(Character(ByteLevelMapping.byteToScalar[byte]))] = byte }
        let added = specials.enumerated().map { i, content -> [String: Any] in
            ["id": 256 + i, "content": content, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true]
        }
        let bosEntry: [String: Any] = ["SpecialToken": ["id": specials[0], "type_id": 0]]
        return [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(), "added_tokens": added, "normalizer": NSNull(),
            "pre_tokenizer": ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true],
            "post_processor": [
                "type": "TemplateProcessing",
                "single": [bosEntry, ["Sequence": ["id": "A", "type_id": 0]]],
                "pair": [bosEntry, ["Sequence": ["id": "A", "type_id": 0]], bosEntry, ["Sequence": ["id": "B", "type_id": 1]]],
                "special_tokens": [specials[0]: ["id": specials[0], "ids": [256], "tokens": [specials[0]]]],
            ],
            "decoder": ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true],
            "model": [
                "type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": NSNull(),
                "end_of_word_suffix": NSNull(), "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                "vocab": vocabulary, "merges": [String](),
            ],
        ]
    }

    private static func weights() -> SafetensorsWriter {
        var rng = GaussianSource(seed: 0x5044_5365_7276_6531)
        var writer = SafetensorsWriter()
        func add(_ name: String, _ rows: Int, _ cols: Int, std: Float) {
            writer.add(name, shape: [rows, cols], values: (0..<rows * cols).map { _ in rng.next() * std }, dtype: .bf16)
        }
        func norm(_ name: String) {
            writer.add(name, shape: [hidden], values: (0..<hidden).map { _ in 1 + 0.1 * rng.next() })
        }
        let headDim = hidden / heads
        add("model.embed_tokens.weight", vocab, hidden, std: 1)
        for i in 0..<layers {
            let p = "model.layers.\(i)."
            norm(p + "input_layernorm.weight")
            norm(p + "post_attention_layernorm.weight")
            let s = 1 / Float(hidden).squareRoot()
            add(p + "self_attn.q_proj.weight", heads * headDim, hidden, std: s)
            add(p + "self_attn.k_proj.weight", kvHeads * headDim, hidden, std: s)
            add(p + "self_attn.v_proj.weight", kvHeads * headDim, hidden, std: s)
            add(p + "self_attn.o_proj.weight", hidden, heads * headDim, std: s)
            add(p + "mlp.gate_proj.weight", intermediate, hidden, std: s)
            add(p + "mlp.up_proj.weight", intermediate, hidden, std: s)
            add(p + "mlp.down_proj.weight", hidden, intermediate, std: 1 / Float(intermediate).squareRoot())
        }
        norm("model.norm.weight")
        // Output rows only for printable ASCII (and a faint end-of-text), so
        // the random model writes readable gibberish rather than broken UTF-8.
        var head = [Float](repeating: 0, count: vocab * hidden)
        for token in 0..<vocab {
            let printable = (0x20...0x7E).contains(token) || token == 0x0A
            let std: Float = printable ? 4 / Float(hidden).squareRoot() : (token == 258 ? 1 / Float(hidden).squareRoot() : 0)
            for j in 0..<hidden { head[token * hidden + j] = rng.next() * std }
        }
        writer.add("lm_head.weight", shape: [vocab, hidden], values: head, dtype: .bf16)
        return writer
    }
}

/// Deterministic standard normal samples (Box–Muller over SplitMix64), so
/// the demo weights are the same on every machine.
struct GaussianSource {
    private var state: UInt64
    private var spare: Float?

    init(seed: UInt64) { state = seed }

    private mutating func unit() -> Float {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return (Float(z >> 40) + 0.5) / Float(1 << 24)
    }

    mutating func next() -> Float {
        if let s = spare { spare = nil; return s }
        let r = (-2 * Foundation.log(unit())).squareRoot(), theta = 2 * Float.pi * unit()
        spare = r * Foundation.sin(theta)
        return r * Foundation.cos(theta)
    }
}
