import Foundation

/// The committed oracle fixtures (tests/fixtures), made by tests/reference/make_fixtures.py
/// from Hugging Face transformers.
public enum Fixtures {
    /// Repository root, found from this file's location.
    public static let repositoryRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
        }
        fatalError("Package.swift not found above \(#filePath)")
    }()

    public static let modelsDirectory = repositoryRoot.appendingPathComponent("tests/fixtures/models")
    public static let tokenizersDirectory = repositoryRoot.appendingPathComponent("tests/fixtures/tokenizers")

    /// Folder names of every model fixture.
    public static let modelNames: [String] = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: modelsDirectory.path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted()
    }()

    public static func modelDirectory(_ name: String) -> URL { modelsDirectory.appendingPathComponent(name) }
}

/// `reference.json`: what transformers produced for one fixture model.
public struct ModelReference: Decodable, Sendable {
    public let prompts: [[Int]]
    public let maxNewTokens: Int
    /// Greedy continuation of each prompt, generated alone.
    public let greedy: [[Int]]
    /// Top-1 minus top-2 logit at each generated step.
    public let margins: [[Float]]
    /// Below this margin a step is a near-tie that rounding may flip.
    public let decisiveThreshold: Float
    /// Logits at each prompt's last position.
    public let lastLogits: [[Float]]
    public let sharedPrefixGroup: SharedPrefixGroup
    /// The end-of-sequence ids transformers' generate() stops at (its generation_config), when the fixture tests them.
    public let eosTokenIds: [Int]?
    /// generate() honouring `eosTokenIds`: each continuation ends at its first EOS (included) or after max_new_tokens.
    public let greedyEOS: [[Int]]?

    public struct SharedPrefixGroup: Decodable, Sendable {
        public let prefixLen: Int
        public let promptIndices: [Int]

        enum CodingKeys: String, CodingKey {
            case prefixLen = "prefix_len"
            case promptIndices = "prompt_indices"
        }
    }

    enum CodingKeys: String, CodingKey {
        case prompts, greedy, margins
        case maxNewTokens = "max_new_tokens"
        case decisiveThreshold = "decisive_threshold"
        case lastLogits = "last_logits"
        case sharedPrefixGroup = "shared_prefix_group"
        case eosTokenIds = "eos_token_ids"
        case greedyEOS = "greedy_eos"
    }

    public static func load(_ name: String) throws -> ModelReference {
        let data = try Data(contentsOf: Fixtures.modelDirectory(name).appendingPathComponent("reference.json"))
        return try JSONDecoder().decode(ModelReference.self, from: data)
    }

    /// Where `output` departs from the reference for prompt `index`, if it
    /// does so at a step the reference decided clearly (a real mismatch).
    /// A departure at a near-tie step ends the comparison without failing.
    public func mismatch(prompt index: Int, output: [Int], expected: [Int]? = nil) -> String? {
        let expected = expected ?? greedy[index]
        for step in 0..<expected.count {
            guard step < output.count else { return "prompt \(index): only \(output.count) tokens, expected \(expected.count)" }
            if output[step] != expected[step] {
                if margins[index][step] < decisiveThreshold { return nil }
                return "prompt \(index) (\(prompts[index].count) tokens): step \(step) gave \(output[step]), transformers gave \(expected[step]) with margin \(margins[index][step]); got \(output), expected \(expected)"
            }
        }
        return output.count == expected.count ? nil : "prompt \(index): \(output.count) tokens, expected \(expected.count)"
    }
}
