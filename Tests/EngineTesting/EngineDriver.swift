import Engine
import Foundation
import Models
import Tokenization

/// Drives an `EngineCore` synchronously in tests.
public extension EngineCore {
    /// Loads a fixture model with the given options.
    static func fixture(_ name: String, options: EngineOptions = EngineOptions()) throws -> EngineCore {
        let directory = Fixtures.modelDirectory(name)
        return try EngineCore(model: try ModelRegistry.load(directory: directory), tokenizer: try Tokenizer(directory: directory), options: options)
    }

    /// Steps until nothing is left, returning each request's tokens and final update.
    /// Bounded so a scheduling bug fails the test instead of hanging it.
    @discardableResult
    func runToCompletion(maxSteps: Int = 100_000) -> [String: (tokens: [Int], last: RequestUpdate)] {
        var results: [String: (tokens: [Int], last: RequestUpdate)] = [:]
        var steps = 0
        while hasWork && steps < maxSteps {
            for update in step() {
                let previous = results[update.id]?.tokens ?? []
                results[update.id] = (previous + update.newTokens, update)
            }
            steps += 1
        }
        precondition(!hasWork, "engine still busy after \(maxSteps) steps")
        return results
    }
}

public extension SamplingParams {
    /// Greedy, EOS-ignoring params producing exactly `count` tokens, as the references were made.
    static func greedy(_ count: Int) -> SamplingParams {
        var p = SamplingParams()
        p.temperature = 0
        p.maxNewTokens = count
        p.ignoreEOS = true
        return p
    }
}
