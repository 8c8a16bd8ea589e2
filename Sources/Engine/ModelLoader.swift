import Foundation
import Models
import Tokenization

/// Resolves `--model-path` and loads a checkpoint folder into an engine.
public enum ModelLoader {
    /// The checkpoint folder for a `--model-path` value; nil or "demo" means the built-in demo model.
    public static func resolve(_ modelPath: String?) throws -> URL {
        guard let path = modelPath, path != DemoModel.name else { return try DemoModel.ensure() }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ModelLoadError(file: path, "no such folder; --model-path takes a local Hugging Face checkpoint folder (PDServe downloads nothing) or 'demo'")
        }
        guard isDirectory.boolValue else {
            throw ModelLoadError(file: path, "not a folder; --model-path takes the folder holding config.json, *.safetensors and tokenizer.json")
        }
        return URL(fileURLWithPath: path).standardizedFileURL
    }

    /// Loads model and tokenizer and sizes the KV pool. `progress` receives human-readable lines.
    public static func load(modelPath: String?, options: EngineOptions, progress: (String) -> Void = { _ in }) throws -> EngineCore {
        let directory = try resolve(modelPath)
        progress("loading \(directory.path)")
        let started = Date()
        let model = try ModelRegistry.load(directory: directory, matmulPrecision: options.matmulPrecision) { done, total in
            progress("  layers \(done)/\(total)")
        }
        var options = options
        if options.matmulPrecision != model.matmulPrecision {
            progress("warning: --matmul-precision \(options.matmulPrecision.rawValue) needs AVX-512 with AVX512_BF16 "
                     + "(and PDSERVE_PORTABLE_KERNELS unset); this CPU runs \(model.matmulPrecision.rawValue) instead")
            options.matmulPrecision = model.matmulPrecision
        }
        let tokenizer = try Tokenizer(directory: directory)
        let core = try EngineCore(model: model, tokenizer: tokenizer, options: options)
        let c = model.config
        progress(String(format: "loaded %@ (%.1fM params, %d layers, hidden %d, vocab %d) in %.2fs; KV pool %d pages × %d tokens (%.0f MiB %@); "
                        + "packed weights %.0f MiB; matmul precision %@",
                        c.architecture, Double(model.parameterCount) / 1e6, c.layerCount, c.hiddenSize, c.vocabSize,
                        Date().timeIntervalSince(started), core.totalPageCount, options.pageSize,
                        Double(core.storage.totalBytes) / 1048576, options.kvCacheDType.rawValue,
                        Double(model.packedWeightBytes) / 1048576, options.matmulPrecision.rawValue))
        return core
    }
}
