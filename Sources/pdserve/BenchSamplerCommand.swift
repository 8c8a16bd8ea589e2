import ArgumentParser
import Engine
import Foundation

/// `pdserve bench sampler`: time per sampled token at a vocabulary size,
/// for greedy, plain temperature, top-p and top-k sampling, against the
/// full-sort sampler in the same run.
struct BenchSamplerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sampler",
        abstract: "Time one sampled token (penalties off) for several sampling settings, against the full-sort sampler, in one run."
    )

    @Option(help: "Vocabulary size (Qwen2.5's is 151,936).")
    var vocab = 151_936
    @Option(help: "Tokens sampled per setting.")
    var tokens = 200
    @Option(name: .customLong("output-file"), help: "Write the results as JSON here.")
    var outputFile: String?

    struct Row: Codable {
        var setting: String
        var microsecondsPerToken: Double
        var fullSortMicrosecondsPerToken: Double
    }

    func validate() throws {
        guard vocab >= 2, tokens >= 1 else { throw ValidationError("--vocab must be at least 2 and --tokens at least 1") }
    }

    func run() throws {
        var rng = RandomSource(seed: 1)
        // Logits shaped like a model's: a few strong tokens over a broad tail.
        let logits = (0..<vocab).map { _ in Float(-Foundation.log(Double(rng.nextUnit()) + 1e-7)) * 2 - 8 }
        let settings: [(String, (inout SamplingParams) -> Void)] = [
            ("temperature 1.0", { $0.temperature = 1 }),
            ("temperature 1.0, top_p 0.9", { $0.temperature = 1; $0.topP = 0.9 }),
            ("temperature 0.7, top_k 50", { $0.temperature = 0.7; $0.topK = 50 }),
            ("temperature 1.0, min_p 0.05", { $0.temperature = 1; $0.minP = 0.05 }),
        ]
        var rows: [Row] = []
        print("| setting (vocab \(vocab)) | µs per token | full sort µs per token | speed-up |")
        print("|---|---|---|---|")
        for (name, configure) in settings {
            var params = SamplingParams()
            configure(&params)
            let ours = time { rng in _ = Sampler.draw(logits, params: params, rng: &rng) }
            let baseline = time { rng in _ = Sampler.fullSortDraw(logits, params: params, rng: &rng) }
            rows.append(Row(setting: name, microsecondsPerToken: ours, fullSortMicrosecondsPerToken: baseline))
            print(String(format: "| %@ | %.0f | %.0f | %.1f× |", name, ours, baseline, baseline / ours))
        }
        if let outputFile {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(rows).write(to: URL(fileURLWithPath: outputFile))
        }
    }

    /// Median µs per call over `tokens` calls, after one warm-up.
    private func time(_ body: (inout RandomSource) -> Void) -> Double {
        var rng = RandomSource(seed: 2)
        body(&rng)
        var samples: [Double] = []
        for _ in 0..<tokens {
            let start = ContinuousClock.now
            body(&rng)
            let elapsed = ContinuousClock.now - start
            samples.append((Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18) * 1e6)
        }
        return samples.sorted()[samples.count / 2]
    }
}
