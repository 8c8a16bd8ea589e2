import Foundation
import Tokenization

/// Builds the prompts of a run: random token-id prompts of given lengths
/// (sglang's `random` dataset) or conversations from a local ShareGPT file.
/// Lengths are counted with the served model's own tokenizer, as
/// `sglang.bench_serving` does.
public struct ServingDataset {
    public let tokenizer: Tokenizer
    /// Token ids a random prompt may use: the vocabulary without special or
    /// added tokens, which would change how the server treats the prompt.
    private let ordinaryIds: [Int]

    public init(tokenizer: Tokenizer) {
        self.tokenizer = tokenizer
        let added = Set(tokenizer.addedTokens.map(\.id))
        ordinaryIds = (0..<tokenizer.vocabSize).filter { !added.contains($0) && !tokenizer.isSpecial($0) }
    }

    /// `count` random prompts of one workload class. Ids are sent as they are
    /// (no decode/re-encode round trip), so the server sees exact lengths.
    public func random(_ workload: WorkloadClass, count: Int, using rng: inout SeededGenerator) throws -> [ServingPrompt] {
        guard !ordinaryIds.isEmpty else { throw ServingBenchmarkError.dataset("the tokenizer has no ordinary tokens to build random prompts from") }
        return (0..<count).map { _ in
            let inputLength = Self.length(workload.inputLength, ratio: workload.rangeRatio, using: &rng)
            let outputLength = Self.length(workload.outputLength, ratio: workload.rangeRatio, using: &rng)
            let ids = (0..<inputLength).map { _ in ordinaryIds[Int.random(in: 0..<ordinaryIds.count, using: &rng)] }
            return ServingPrompt(tokenIds: ids, text: tokenizer.decode(ids), promptLength: inputLength,
                                 outputLength: outputLength, workloadClass: workload.name)
        }
    }

    /// `count` conversations from a ShareGPT JSON file (a list of
    /// `{"conversations": [{"from", "value"}, ...]}`): the first turn is the
    /// prompt, the second's token count the output length unless
    /// `fixedOutputLength` is given. Too short or too long pairs are skipped
    /// with sglang's limits (prompt ≥ 2, output ≥ 2, prompt ≤ 1024, sum ≤ 2048).
    public func shareGPT(path: String, count: Int, fixedOutputLength: Int?, using rng: inout SeededGenerator) throws -> [ServingPrompt] {
        guard FileManager.default.fileExists(atPath: path) else {
            throw ServingBenchmarkError.dataset("ShareGPT file \(path) does not exist. This tool never downloads: fetch ShareGPT_V3_unfiltered_cleaned_split.json yourself and pass --dataset-path, or use --dataset-name random")
        }
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard let entries = try JSONSerialization.jsonObject(with: data) as? [[String: Any]] else {
            throw ServingBenchmarkError.dataset("\(path) is not a JSON list of conversations")
        }
        var pairs: [(String, String)] = entries.compactMap { entry in
            guard let turns = entry["conversations"] as? [[String: Any]], turns.count >= 2,
                  let first = turns[0]["value"] as? String, let second = turns[1]["value"] as? String else { return nil }
            return (first, second)
        }
        pairs.shuffle(using: &rng)
        var prompts: [ServingPrompt] = []
        for (prompt, completion) in pairs where prompts.count < count {
            let promptLength = tokenizer.encode(prompt).count
            let outputLength = fixedOutputLength ?? tokenizer.encode(completion, addSpecialTokens: false).count
            if promptLength < 2 || outputLength < 2 { continue }
            if fixedOutputLength == nil && (promptLength > 1024 || promptLength + outputLength > 2048) { continue }
            prompts.append(ServingPrompt(tokenIds: nil, text: prompt, promptLength: promptLength, outputLength: outputLength, workloadClass: "all"))
        }
        guard prompts.count == count else {
            throw ServingBenchmarkError.dataset("\(path) has only \(prompts.count) usable conversations; asked for \(count)")
        }
        return prompts
    }

    /// A length drawn uniformly from [max(1, ratio·length), length].
    static func length(_ length: Int, ratio: Double, using rng: inout SeededGenerator) -> Int {
        let low = max(1, Int(Double(length) * ratio))
        return low >= length ? length : Int.random(in: low...length, using: &rng)
    }
}
