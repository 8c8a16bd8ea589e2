import Engine
import EngineTesting
import Foundation
import Grammar
import Testing

/// Constrained requests in the engine: their outputs match their constraint,
/// are the same alone, batched with free requests, chunked and retracted, and
/// leave the free requests beside them and the page pool untouched.
struct ConstrainedDecodingTests {
    let fixture = "qwen2-fp32"
    static let pattern = "(yes|no), [0-9]{2,4}( and [a-z]{1,5})?!"

    func compiler(_ core: EngineCore) -> GrammarCompiler {
        GrammarCompiler(vocabulary: TokenVocabulary(count: core.model.config.vocabSize) { core.tokenizer.textBytes(of: $0) })
    }

    func constrained(_ grammar: Grammar, seed: UInt64?) -> SamplingParams {
        var params = SamplingParams()
        params.maxNewTokens = 40
        params.temperature = seed == nil ? 0 : 1
        params.seed = seed
        return params
    }

    /// Runs the reference prompts: even ones constrained (greedy and seeded), odd ones free and greedy.
    func run(_ fixture: String, options: EngineOptions) throws -> (results: [String: (tokens: [Int], last: RequestUpdate)], core: EngineCore) {
        let core = try EngineCore.fixture(fixture, options: options)
        let reference = try ModelReference.load(fixture)
        let grammar = try compiler(core).compile(.regex(Self.pattern))
        for (i, prompt) in reference.prompts.prefix(12).enumerated() {
            var input = GenerateInput(id: "p\(i)", promptTokens: prompt, params: SamplingParams.greedy(reference.maxNewTokens))
            if i % 2 == 0 {
                input.params = constrained(grammar, seed: i % 4 == 0 ? nil : UInt64(i))
                input.grammar = grammar
            }
            try core.add(input)
        }
        return (core.runToCompletion(), core)
    }

    /// Every fixture: byte-level (GPT-2, Llama 3, Qwen) and SentencePiece
    /// tokenizers (Llama 2, Mistral: `▁` spaces and byte-fallback tokens) alike.
    @Test(arguments: Fixtures.modelNames)
    func outputsMatchAndAgreeAcrossBatchingChunkingAndRetraction(fixture: String) throws {
        let reference = try ModelReference.load(fixture)
        var layouts: [EngineOptions] = [EngineOptions()]
        var chunked = EngineOptions()
        chunked.chunkedPrefillSize = 7
        chunked.pageSize = 5
        layouts.append(chunked)
        var tight = EngineOptions()
        // Room for the longest request and a little more: the others must be retracted to make way.
        let longest = reference.prompts.prefix(12).map(\.count).max()! + max(40, reference.maxNewTokens)
        tight.maxTotalTokens = (longest / 16 + 3) * 16
        tight.chunkedPrefillSize = 64
        layouts.append(tight)
        var oneAtATime = EngineOptions()
        oneAtATime.maxRunningRequests = 1
        layouts.append(oneAtATime)

        var first: [String: [Int]]?
        let regex = try NSRegularExpression(pattern: "^" + Self.pattern + "$")
        for options in layouts {
            let (results, core) = try run(fixture, options: options)
            for (id, result) in results {
                let index = Int(id.dropFirst())!
                if index % 2 == 0 {
                    let text = core.tokenizer.decode(result.tokens, skipSpecialTokens: true)
                    #expect(regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil, "\(fixture) \(id): \(text)")
                    #expect(result.last.finish == .stop(matched: nil), "\(id)")
                } else {
                    #expect(reference.mismatch(prompt: index, output: result.tokens) == nil, "\(id) beside constrained requests")
                }
            }
            let tokens = results.mapValues(\.tokens)
            if let first { #expect(tokens == first, "a layout changed the outputs") } else { first = tokens }
            core.flushCache()
            #expect(core.freePageCount == core.totalPageCount)
            #expect(core.allocatorInvariantsHold)
            if options.maxTotalTokens == tight.maxTotalTokens { #expect(core.retractionCount > 0, "nothing was retracted") }
        }
    }

    /// Without a stop token to end it (ignore_eos), a complete output ends by
    /// itself; with one, the last token drawn is that stop token.
    @Test func aCompleteOutputEnds() throws {
        let core = try EngineCore.fixture(fixture)
        let grammar = try compiler(core).compile(.regex("[0-9]{3}"))
        let prompt = try ModelReference.load(fixture).prompts[1]
        for ignoreEOS in [true, false] {
            var input = GenerateInput(id: "eos-\(ignoreEOS)", promptTokens: prompt, params: constrained(grammar, seed: nil))
            input.params.ignoreEOS = ignoreEOS
            input.params.minNewTokens = 30
            input.grammar = grammar
            try core.add(input)
        }
        let results = core.runToCompletion()
        let free = try #require(results["eos-true"]), stopped = try #require(results["eos-false"])
        #expect(core.tokenizer.decode(free.tokens).count == 3)
        #expect(free.last.finish == .stop(matched: nil))
        #expect(stopped.tokens.dropLast() == free.tokens[...])
        #expect(core.tokenizer.eosTokenIds.contains(stopped.tokens.last!) || core.model.config.eosTokenIds.contains(stopped.tokens.last!))
    }
}
