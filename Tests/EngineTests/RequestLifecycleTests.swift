import Engine
import EngineTesting
import Testing

/// Stops, limits, seeds, aborts and refusals, on a small fixture model.
struct RequestLifecycleTests {
    let fixture = "qwen2-fp32"

    func run(_ core: EngineCore, _ prompt: [Int], _ params: SamplingParams, id: String = "r") throws -> (tokens: [Int], last: RequestUpdate, text: String) {
        try core.add(GenerateInput(id: id, promptTokens: prompt, params: params))
        var text = ""
        var tokens: [Int] = []
        var last: RequestUpdate?
        var steps = 0
        while core.hasWork && steps < 10_000 {
            for u in core.step() where u.id == id {
                text += u.textDelta
                tokens += u.newTokens
                last = u
            }
            steps += 1
        }
        return (tokens, try #require(last), text)
    }

    @Test func stopTokenEndsWithStop() throws {
        let core = try EngineCore.fixture(fixture)
        let reference = try ModelReference.load(fixture)
        let expected = reference.greedy[5]
        let stopAt = try #require(expected.firstIndex { expected.firstIndex(of: $0)! >= 2 })
        var params = SamplingParams.greedy(12)
        params.stopTokenIds = [expected[stopAt]]
        let result = try run(core, reference.prompts[5], params)
        #expect(result.tokens == Array(expected[...stopAt]))
        #expect(result.last.finish == .stop(matched: nil))
    }

    @Test func stopStringCutsTheText() throws {
        let core = try EngineCore.fixture(fixture)
        let reference = try ModelReference.load(fixture)
        let full = try run(core, reference.prompts[12], SamplingParams.greedy(12), id: "full")
        #expect(full.text == core.tokenizer.decode(full.tokens, skipSpecialTokens: true))
        // A stop string from the middle of the greedy text.
        let chars = Array(full.text)
        try #require(chars.count >= 6)
        let stop = String(chars[chars.count / 2..<chars.count / 2 + 2])
        let cut = String(full.text[..<full.text.range(of: stop)!.lowerBound])
        var params = SamplingParams.greedy(12)
        params.stopStrings = [stop]
        let stopped = try run(core, reference.prompts[12], params, id: "stopped")
        #expect(stopped.text == cut)
        #expect(stopped.last.finish == .stop(matched: stop))
    }

    @Test func lengthLimitAndZeroTokens() throws {
        let core = try EngineCore.fixture(fixture)
        let prompt = try ModelReference.load(fixture).prompts[3]
        let five = try run(core, prompt, SamplingParams.greedy(5), id: "five")
        #expect(five.tokens.count == 5 && five.last.finish == .length && five.last.completionTokenCount == 5)
        let none = try run(core, prompt, SamplingParams.greedy(0), id: "none")
        #expect(none.tokens.isEmpty && none.last.finish == .length)
    }

    @Test func seedsMakeSamplingReproducible() throws {
        let core = try EngineCore.fixture(fixture)
        let prompt = try ModelReference.load(fixture).prompts[10]
        var params = SamplingParams()
        params.maxNewTokens = 16
        params.ignoreEOS = true
        params.temperature = 1.5
        params.seed = 42
        let a = try run(core, prompt, params, id: "a").tokens
        let b = try run(core, prompt, params, id: "b").tokens
        params.seed = 43
        let c = try run(core, prompt, params, id: "c").tokens
        #expect(a == b)
        #expect(a != c)
    }

    @Test func topKOfOneIsGreedy() throws {
        let core = try EngineCore.fixture(fixture)
        let reference = try ModelReference.load(fixture)
        var params = SamplingParams.greedy(12)
        params.temperature = 0.8
        params.topK = 1
        let result = try run(core, reference.prompts[8], params)
        #expect(reference.mismatch(prompt: 8, output: result.tokens) == nil)
    }

    @Test func logprobsAreReturnedAndNormalized() throws {
        let core = try EngineCore.fixture(fixture)
        let prompt = try ModelReference.load(fixture).prompts[4]
        var params = SamplingParams.greedy(3)
        params.returnLogprobs = true
        params.topLogprobs = 3
        try core.add(GenerateInput(id: "lp", promptTokens: prompt, params: params))
        let updates = (0..<20).flatMap { _ in core.step() }
        let logprobs = updates.flatMap(\.newLogprobs)
        #expect(logprobs.count == 3)
        for lp in logprobs {
            #expect(lp.logprob <= 0 && lp.top.count == 3)
            #expect(lp.top[0].token == lp.token && lp.top[0].logprob == lp.logprob, "greedy picks the top token")
            #expect(lp.top[0].logprob >= lp.top[1].logprob && lp.top[1].logprob >= lp.top[2].logprob)
        }
    }

    @Test func abortFreesPagesAtOnce() throws {
        let core = try EngineCore.fixture(fixture, options: { var o = EngineOptions(); o.enablePrefixCache = false; return o }())
        let free = core.freePageCount
        let prompt = try ModelReference.load(fixture).prompts[20]
        try core.add(GenerateInput(id: "x", promptTokens: prompt, params: SamplingParams.greedy(100)))
        _ = core.step()
        _ = core.step()
        #expect(core.freePageCount < free)
        core.abort(id: "x", message: "client disconnected")
        #expect(core.freePageCount == free)
        let updates = core.step()
        #expect(updates.first?.finish == .abort(message: "client disconnected"))
        #expect(!core.hasWork)
    }

    @Test func refusalsNameTheProblem() throws {
        let core = try EngineCore.fixture(fixture, options: { var o = EngineOptions(); o.contextLength = 100; return o }())
        func refusal(_ prompt: [Int], _ params: SamplingParams) -> String? {
            do { try core.add(GenerateInput(id: "bad", promptTokens: prompt, params: params)); return nil }
            catch { return error.message }
        }
        #expect(refusal([], .greedy(5))?.contains("empty") == true)
        #expect(refusal([1, 2], .greedy(99))?.contains("context length is 100 tokens, but the request needs 101") == true)
        #expect(refusal([1_000_000], .greedy(5))?.contains("outside the vocabulary") == true)
        var params = SamplingParams.greedy(5)
        params.topP = 0
        #expect(refusal([1], params)?.contains("top_p") == true)
        params = SamplingParams.greedy(5)
        params.temperature = -1
        #expect(refusal([1], params)?.contains("temperature") == true)
        params = SamplingParams.greedy(5)
        params.stopStrings = Array(repeating: "x", count: 17)
        #expect(refusal([1], params)?.contains("stop strings") == true)
        #expect(!core.hasWork)
    }
}

struct SamplerTests {
    @Test func repetitionPenaltyFollowsTransformers() {
        var rng = RandomSource(seed: 1)
        var params = SamplingParams()
        params.temperature = 0
        params.repetitionPenalty = 2
        // Token 0 leads but was seen: 3/2 = 1.5 < 2 → token 1 wins; negative seen logits are multiplied.
        let (token, _) = Sampler.sample(logits: [3, 2, -1][...], params: params, promptTokens: [0, 2], outputTokens: [], rng: &rng)
        #expect(token == 1)
    }

    @Test func minPAndTopPRestrictTheCandidates() {
        var params = SamplingParams()
        params.temperature = 1
        params.topP = 0.5
        var rng = RandomSource(seed: 3)
        // Token 2 holds most of the mass; with top_p 0.5 it is the only candidate.
        let logits: [Float] = [0, 0, 5, 0]
        for _ in 0..<50 { #expect(Sampler.sample(logits: logits[...], params: params, promptTokens: [], outputTokens: [], rng: &rng).token == 2) }
        params.topP = 1
        params.minP = 0.5
        for _ in 0..<50 { #expect(Sampler.sample(logits: logits[...], params: params, promptTokens: [], outputTokens: [], rng: &rng).token == 2) }
        params.minP = 0
        var seen = Set<Int>()
        for _ in 0..<400 { seen.insert(Sampler.sample(logits: [0, 0, 1, 0][...], params: params, promptTokens: [], outputTokens: [], rng: &rng).token) }
        #expect(seen == [0, 1, 2, 3], "without restrictions every token can be drawn")
    }
}

/// Prompt logprobs (SGLang's logprob_start_len) gathered across prefill
/// chunks and around the prefix cache equal those of running each prefix alone.
@Test func inputLogprobsMatchPerPrefixForwardPasses() throws {
    var options = EngineOptions()
    options.chunkedPrefillSize = 7
    let core = try EngineCore.fixture("llama3-bf16", options: options)
    let prompt = try ModelReference.load("llama3-bf16").prompts[9]
    // Warm the prefix cache with the same prompt so matching must be held back.
    try core.add(GenerateInput(id: "warm", promptTokens: prompt, params: .greedy(1)))
    core.runToCompletion()
    var params = SamplingParams.greedy(2)
    params.inputLogprobStart = 3
    params.topLogprobs = 2
    var inputLogprobs: [TokenLogprob?] = []
    try core.add(GenerateInput(id: "lp", promptTokens: prompt, params: params))
    while core.hasWork {
        // The first token's update carries them.
        for u in core.step() where !u.inputLogprobs.isEmpty { inputLogprobs = u.inputLogprobs }
    }
    #expect(inputLogprobs.count == prompt.count - 3)
    for (k, entry) in inputLogprobs.enumerated() {
        let index = 3 + k
        let lp = try #require(entry)
        #expect(lp.token == prompt[index] && lp.top.count == 2)
        // Independent path: the prefix alone, its next-token distribution.
        let solo = try EngineCore.fixture("llama3-bf16")
        var one = SamplingParams.greedy(1)
        one.returnLogprobs = true
        one.topLogprobs = 1
        try solo.add(GenerateInput(id: "s", promptTokens: Array(prompt[..<index]), params: one))
        var best: TokenLogprob?
        while solo.hasWork { for u in solo.step() { best = u.newLogprobs.first ?? best } }
        let top = try #require(best?.top.first)
        #expect(abs(top.logprob - lp.top[0].logprob) < 1e-4 && top.token == lp.top[0].token)
    }
}
