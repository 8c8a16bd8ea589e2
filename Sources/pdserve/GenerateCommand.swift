import ArgumentParser
import Engine
import Foundation

/// `pdserve generate`: one completion, offline, streamed to stdout.
struct GenerateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate a completion offline (no server): the quickest way to see the engine work."
    )

    @OptionGroup var engine: EngineFlags
    @OptionGroup var sampling: SamplingFlags

    @Option(help: "The prompt text (tokenized with the model's tokenizer, special tokens added).")
    var prompt: String

    func run() async throws {
        let stderr = FileHandle.standardError
        func log(_ line: String) { stderr.write(Data((line + "\n").utf8)) }
        let core: EngineCore
        do {
            core = try ModelLoader.load(modelPath: engine.modelPath, options: engine.options, progress: log)
        } catch {
            throw ValidationError("\(error)")
        }
        let engine = Engine(core: core)
        defer { engine.shutdown() }
        let params = sampling.params
        do { try params.validate() } catch { throw ValidationError(error.message) }
        let tokens = engine.tokenizer.encode(prompt)
        let started = Date()
        var firstToken: Date?
        var completion = 0
        var finish: FinishReason?
        do {
            for try await update in engine.generate(GenerateInput(id: "generate-0", promptTokens: tokens, params: params)) {
                if firstToken == nil, !update.newTokens.isEmpty { firstToken = Date() }
                FileHandle.standardOutput.write(Data(update.textDelta.utf8))
                completion = update.completionTokenCount
                finish = update.finish ?? finish
            }
        } catch {
            throw ValidationError("\(error)")
        }
        print("")
        let total = Date().timeIntervalSince(started)
        let ttft = firstToken.map { $0.timeIntervalSince(started) } ?? total
        let decodeRate = completion > 1 ? Double(completion - 1) / max(total - ttft, 1e-9) : 0
        log(String(format: "[%d prompt tokens, %d generated, finish: %@] time to first token %.1f ms, decode %.1f tok/s",
                   tokens.count, completion, finish?.name ?? "none", ttft * 1000, decodeRate))
    }
}
