import EngineTesting
import Foundation
import Kernels
import Testing
@testable import Models

/// Last-position logits of every reference prompt, one prompt per forward pass,
/// agree with transformers (fp32 reload of the saved checkpoint) within
/// 2e-3 + 1e-3·|logit| — fp32 summation-order noise plus the fixtures' 6 significant digits.
@Test(arguments: Fixtures.modelNames)
func lastLogitsMatchTransformers(fixture: String) throws {
    let worst = try logitError(fixture: fixture, kvCache: .f32, tolerance: { value, _ in 2e-3 + 1e-3 * abs(value) })
    #expect(worst <= 0, "\(fixture): logits exceed the tolerance by \(worst)")
}

/// A bf16 KV cache keeps 8 bits of mantissa in K and V; through these
/// fixtures' deliberately large random weights the error grows to about 2%
/// of the largest logit. Stated tolerance: 4% of the row's largest |logit|.
@Test(arguments: Fixtures.modelNames)
func bfloat16KVCacheLogitsStayClose(fixture: String) throws {
    let worst = try logitError(fixture: fixture, kvCache: .bf16, tolerance: { _, rowMax in 0.04 * rowMax })
    #expect(worst <= 0, "\(fixture): bf16-KV logits exceed the tolerance by \(worst)")
}

/// Runs each reference prompt in one forward pass and returns how far the
/// worst logit exceeds `tolerance(reference, row's max |reference|)` (≤ 0 means all within).
func logitError(fixture: String, kvCache: DType, tolerance: (_ value: Float, _ rowMaxAbs: Float) -> Float) throws -> Float {
    let model = try LlamaModel(directory: Fixtures.modelDirectory(fixture))
    let reference = try ModelReference.load(fixture)
    let pageSize = 16
    let longest = reference.prompts.map(\.count).max()!
    let cache = try PagedKVStorage(layers: model.config.layerCount, pageCount: longest / pageSize + 1, pageSize: pageSize,
                                   width: model.kvWidth, dtype: kvCache)
    let pool = ComputePool(threads: 2)
    var worst: Float = -.infinity
    for (index, prompt) in reference.prompts.enumerated() {
        var batch = ForwardBatch()
        let pages = (0..<Int32(prompt.count / pageSize + 1)).map { $0 }
        batch.append(sequenceTokens: prompt.map { Int32($0) }, startPosition: 0, pageTable: pages, pageSize: pageSize, logitIndices: [prompt.count - 1])
        let logits = model.forward(batch, cache: cache, pool: pool)
        let expected = reference.lastLogits[index]
        #expect(logits.count == expected.count)
        let rowMax = expected.map(abs).max() ?? 0
        for (ours, theirs) in zip(logits, expected) {
            worst = max(worst, abs(ours - theirs) - tolerance(theirs, rowMax))
        }
    }
    return worst
}

@Test func readsBothConfigGenerations() throws {
    let classic = try ModelConfig(directory: Fixtures.modelDirectory("llama2-fp32-sharded"))
    #expect(classic.ropeScaling == .none)
    let modern = try ModelConfig(directory: Fixtures.modelDirectory("llama3-bf16"))
    #expect(modern.ropeTheta == 500000)
    guard case .llama3(let factor, _, _, let original) = modern.ropeScaling else {
        Issue.record("llama3 rope scaling not read from rope_parameters")
        return
    }
    #expect(factor == 8 && original == 64)
    let qwen3 = try ModelConfig(directory: Fixtures.modelDirectory("qwen3-bf16"))
    #expect(qwen3.headDim == 32 && qwen3.headDim * qwen3.headCount != qwen3.hiddenSize)
    let mistral = try ModelConfig(directory: Fixtures.modelDirectory("mistral-fp16"))
    #expect(mistral.slidingWindow == 96)
    let qwen2 = try ModelConfig(directory: Fixtures.modelDirectory("qwen2-fp32"))
    #expect(qwen2.slidingWindow == nil, "Qwen2's sliding_window applies only with use_sliding_window")
}

/// Copies a fixture to a scratch folder so a test can damage it.
func scratchCopy(of fixture: String) throws -> URL {
    let target = FileManager.default.temporaryDirectory.appendingPathComponent("pdserve-\(fixture)-\(UUID().uuidString)")
    try FileManager.default.copyItem(at: Fixtures.modelDirectory(fixture), to: target)
    return target
}

func loadError(_ directory: URL) -> String? {
    do {
        _ = try LlamaModel(directory: directory)
        return nil
    } catch {
        return "\(error)"
    }
}

@Test func unsupportedArchitectureIsNamed() throws {
    let dir = try scratchCopy(of: "qwen2-fp32")
    defer { try? FileManager.default.removeItem(at: dir) }
    let url = dir.appendingPathComponent("config.json")
    var json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    json["architectures"] = ["GPTNeoXForCausalLM"]
    try JSONSerialization.data(withJSONObject: json).write(to: url)
    let message = try #require(loadError(dir))
    #expect(message.contains("config.json") && message.contains("unsupported architecture GPTNeoXForCausalLM"))
}

@Test func truncatedWeightsAreReportedWithTheFile() throws {
    let dir = try scratchCopy(of: "qwen2-fp32")
    defer { try? FileManager.default.removeItem(at: dir) }
    let url = dir.appendingPathComponent("model.safetensors")
    let data = try Data(contentsOf: url)
    try data.prefix(data.count / 2).write(to: url)
    let message = try #require(loadError(dir))
    #expect(message.contains("model.safetensors") && message.contains("truncated"))
}

@Test func missingShardIsReportedWithTheFile() throws {
    let dir = try scratchCopy(of: "llama2-fp32-sharded")
    defer { try? FileManager.default.removeItem(at: dir) }
    try FileManager.default.removeItem(at: dir.appendingPathComponent("model-00002-of-00003.safetensors"))
    let message = try #require(loadError(dir))
    #expect(message.contains("model-00002-of-00003.safetensors") && message.contains("missing"))
}

@Test func missingConfigAndGarbageHeaderAreClear() throws {
    let dir = try scratchCopy(of: "qwen2-fp32")
    defer { try? FileManager.default.removeItem(at: dir) }
    try Data([0xFF, 0xFF, 0, 0, 0, 0, 0, 0, 1, 2, 3]).write(to: dir.appendingPathComponent("model.safetensors"))
    #expect(try #require(loadError(dir)).contains("header length"))
    try FileManager.default.removeItem(at: dir.appendingPathComponent("config.json"))
    #expect(try #require(loadError(dir)).contains("config.json"))
}

@Test func demoModelIsDeterministicAndLoads() throws {
    let a = FileManager.default.temporaryDirectory.appendingPathComponent("pdserve-demo-a-\(UUID().uuidString)")
    let b = FileManager.default.temporaryDirectory.appendingPathComponent("pdserve-demo-b-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: a); try? FileManager.default.removeItem(at: b) }
    for dir in [a, b] {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try DemoModel.write(to: dir)
    }
    let weightsA = try Data(contentsOf: a.appendingPathComponent("model.safetensors"))
    #expect(weightsA == (try Data(contentsOf: b.appendingPathComponent("model.safetensors"))))
    let model = try LlamaModel(directory: a)
    #expect(model.config.architecture == .llama && model.config.vocabSize == 259)
}
