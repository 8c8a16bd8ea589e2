import Foundation
import Kernels

/// The model families PDServe runs, keyed by config.json's `architectures`.
/// A new family is a new `CausalLM` file plus one line in `families`.
public enum ModelRegistry {
    public static let families: [any CausalLM.Type] = [
        LlamaModel.self, // Llama 2/3, Qwen2, Qwen3, Mistral
    ]

    /// Every architecture string some family loads, in registration order.
    public static var supportedArchitectures: [String] { families.flatMap { $0.architectures } }

    public static func family(for architecture: String) -> (any CausalLM.Type)? {
        families.first { $0.architectures.contains(architecture) }
    }

    /// Loads a checkpoint folder with the family its config.json names; an
    /// architecture no family registered is refused with the supported list.
    public static func load(directory: URL, matmulPrecision: MatmulPrecision = .fp32,
                            progress: (Int, Int) -> Void = { _, _ in }) throws -> any CausalLM {
        let config = try ModelConfig(directory: directory)
        guard let family = family(for: config.architecture) else {
            throw ModelLoadError(file: directory.appendingPathComponent("config.json"), unsupported(config.architecture))
        }
        return try family.init(config: config, directory: directory, matmulPrecision: matmulPrecision, progress: progress)
    }

    static func unsupported(_ architecture: String) -> String {
        "unsupported architecture \(architecture); supported: \(supportedArchitectures.joined(separator: ", "))"
    }
}
