import Engine
import EngineTesting
import Testing

/// Greedy outputs equal transformers.generate token for token — one request
/// at a time, all in one continuous batch, with chunked prefill, under every
/// schedule policy, and with prefix-cache hits — and the KV pool is whole
/// again afterwards.
struct GreedyEquivalenceTests {
    @discardableResult
    func check(_ fixture: String, options: EngineOptions, together: Bool) throws -> EngineCore {
        let core = try EngineCore.fixture(fixture, options: options)
        let reference = try ModelReference.load(fixture)
        let initialFree = core.freePageCount
        var outputs: [String: [Int]] = [:]
        for (i, prompt) in reference.prompts.enumerated() {
            try core.add(GenerateInput(id: "p\(i)", promptTokens: prompt, params: .greedy(reference.maxNewTokens)))
            if !together { outputs.merge(core.runToCompletion().mapValues(\.tokens)) { $1 } }
        }
        if together { outputs = core.runToCompletion().mapValues(\.tokens) }
        for i in reference.prompts.indices {
            let mismatch = reference.mismatch(prompt: i, output: outputs["p\(i)"] ?? [])
            #expect(mismatch == nil, "\(fixture): \(mismatch ?? "")")
        }
        core.flushCache()
        #expect(core.freePageCount == initialFree, "\(fixture): pages leaked")
        #expect(core.allocatorInvariantsHold)
        return core
    }

    @Test(arguments: Fixtures.modelNames)
    func oneAtATime(fixture: String) throws {
        var options = EngineOptions()
        options.enablePrefixCache = false
        try check(fixture, options: options, together: false)
    }

    @Test(arguments: Fixtures.modelNames)
    func allInOneBatch(fixture: String) throws {
        var options = EngineOptions()
        options.threads = 2
        options.chunkedPrefillSize = 8192
        try check(fixture, options: options, together: true)
    }

    @Test(arguments: Fixtures.modelNames)
    func chunkedPrefillWithOddPages(fixture: String) throws {
        var options = EngineOptions()
        options.chunkedPrefillSize = 37
        options.pageSize = 5
        options.maxRunningRequests = 7
        try check(fixture, options: options, together: true)
    }

    @Test(arguments: Fixtures.modelNames)
    func retractionUnderPagePressure(fixture: String) throws {
        // Room for only a few long requests at once: the scheduler must retract and recompute.
        var options = EngineOptions()
        options.maxTotalTokens = 400
        options.chunkedPrefillSize = 64
        let core = try check(fixture, options: options, together: true)
        #expect(core.retractionCount > 0, "the pool was big enough that nothing was retracted")
    }

    /// Every waiting-queue policy reorders admission (SPRF also prompts
    /// part-way through their chunks), with retraction under page pressure:
    /// the order changes, the tokens do not.
    @Test(arguments: Fixtures.modelNames, [SchedulePolicy.sprf, .lpm, .lof, .random])
    func everySchedulePolicyWithChunksAndPagePressure(fixture: String, policy: SchedulePolicy) throws {
        var options = EngineOptions()
        options.schedulePolicy = policy
        options.chunkedPrefillSize = 37
        options.pageSize = 5
        options.maxRunningRequests = 7
        options.maxTotalTokens = 400
        try check(fixture, options: options, together: true)
    }

    /// Fixtures whose reference also records generate() stopping at EOS.
    static let eosFixtures = Fixtures.modelNames.filter { (try? ModelReference.load($0))?.greedyEOS != nil }

    @Test(arguments: eosFixtures)
    func stopsAtTheEndOfSequenceIdsTransformersStopsAt(fixture: String) throws {
        let core = try EngineCore.fixture(fixture)
        let reference = try ModelReference.load(fixture)
        let expected = try #require(reference.greedyEOS)
        #expect(Set(core.model.config.eosTokenIds) == Set(try #require(reference.eosTokenIds)))
        for (i, prompt) in reference.prompts.enumerated() {
            var params = SamplingParams.greedy(reference.maxNewTokens)
            params.ignoreEOS = false
            try core.add(GenerateInput(id: "p\(i)", promptTokens: prompt, params: params))
        }
        let results = core.runToCompletion()
        var stoppedEarly = 0
        for i in reference.prompts.indices {
            let output = results["p\(i)"]?.tokens ?? []
            let mismatch = reference.mismatch(prompt: i, output: output, expected: expected[i])
            #expect(mismatch == nil, "\(fixture): \(mismatch ?? "")")
            if expected[i].count < reference.maxNewTokens, mismatch == nil, output == expected[i] {
                stoppedEarly += 1
                #expect(results["p\(i)"]?.last.finish?.name == "stop")
            }
        }
        #expect(stoppedEarly >= 2, "\(fixture): the reference stops early at EOS on at least two prompts")
    }

    @Test(arguments: Fixtures.modelNames)
    func sharedPrefixesHitTheCache(fixture: String) throws {
        let core = try EngineCore.fixture(fixture)
        let reference = try ModelReference.load(fixture)
        let group = reference.sharedPrefixGroup
        let initialFree = core.freePageCount
        // Warm the cache with the first prompt of the group, then run the rest.
        let first = group.promptIndices[0]
        try core.add(GenerateInput(id: "warm", promptTokens: reference.prompts[first], params: .greedy(reference.maxNewTokens)))
        core.runToCompletion()
        for i in group.promptIndices {
            try core.add(GenerateInput(id: "p\(i)", promptTokens: reference.prompts[i], params: .greedy(reference.maxNewTokens)))
        }
        let results = core.runToCompletion()
        for i in group.promptIndices {
            let result = try #require(results["p\(i)"])
            #expect(result.last.cachedTokenCount >= (group.prefixLen / 16) * 16, "prompt \(i) did not reuse the shared prefix")
            let mismatch = reference.mismatch(prompt: i, output: result.tokens)
            #expect(mismatch == nil, "\(fixture): \(mismatch ?? "")")
        }
        core.flushCache()
        #expect(core.freePageCount == initialFree)
    }
}
