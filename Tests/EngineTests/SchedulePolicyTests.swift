import Engine
import EngineTesting
import Testing

/// `--schedule-policy`: who is admitted first when the step's token budget
/// cannot take everyone, and that nobody starves.
struct SchedulePolicyTests {
    let fixture = "qwen2-fp32"
    /// 343 tokens, and 16 tokens: exactly one step's budget below.
    let long = 21, short = 5

    func core(_ policy: SchedulePolicy, priority: PriorityScheduling? = nil, maxRunning: Int = 64) throws -> EngineCore {
        var options = EngineOptions()
        options.maxRunningRequests = maxRunning
        options.chunkedPrefillSize = 16
        options.schedulePolicy = policy
        options.priorityScheduling = priority
        options.threads = 1
        return try EngineCore.fixture(fixture, options: options)
    }

    /// Steps until `id` has its first token; nil if it never does within `limit` steps.
    func stepsToFirstToken(_ core: EngineCore, _ id: String, limit: Int) -> Int? {
        for step in 1...limit {
            if core.step().contains(where: { $0.id == id && !$0.newTokens.isEmpty }) { return step }
        }
        return nil
    }

    /// With priority scheduling, one request runs at a time (budget 16, the
    /// short prompt's size): they are admitted by priority — larger first, or
    /// smaller with `lowValuesFirst` — and in arrival order within a priority.
    @Test(arguments: [false, true])
    func waitingRequestsAreAdmittedByPriority(lowValuesFirst: Bool) throws {
        let reference = try ModelReference.load(fixture)
        let core = try core(.fcfs, priority: PriorityScheduling(lowValuesFirst: lowValuesFirst, defaultValue: 1))
        for (id, priority) in [("a", 0), ("b", 5), ("c", nil), ("d", 5)] as [(String, Int?)] {
            var input = GenerateInput(id: id, promptTokens: reference.prompts[short], params: .greedy(1))
            input.priority = priority
            try core.add(input)
        }
        var firsts: [String] = []
        for _ in 1...20 {
            for update in core.step() where !update.newTokens.isEmpty { firsts.append(update.id) }
        }
        // c has the default priority, 1.
        #expect(firsts == (lowValuesFirst ? ["a", "c", "b", "d"] : ["b", "d", "c", "a"]))
        // Without priority scheduling a priority is refused, not ignored.
        var input = GenerateInput(id: "x", promptTokens: reference.prompts[short], params: .greedy(1))
        input.priority = 3
        #expect(throws: InvalidRequest.self) { try self.core(.fcfs).add(input) }
    }

    /// Two slots, both decoding priority-0 requests: a priority-20 arrival
    /// preempts one (threshold 10) and has its first token as soon as its
    /// 16-token prompt is through (two steps beside two decodes), and the
    /// preempted one recomputes to the same tokens; with preemption off, or a
    /// threshold the difference does not exceed, it waits for a slot.
    @Test(arguments: [10, 30, nil] as [Int?])
    func aMoreUrgentRequestPreemptsARunningOne(threshold: Int?) throws {
        let reference = try ModelReference.load(fixture)
        let core = try core(.fcfs, priority: PriorityScheduling(preemptionThreshold: threshold), maxRunning: 2)
        for (id, prompt) in [("low-a", 3), ("low-b", 4)] {
            var input = GenerateInput(id: id, promptTokens: reference.prompts[prompt], params: .greedy(reference.maxNewTokens))
            input.priority = 0
            try core.add(input)
        }
        var outputs: [String: [Int]] = [:]
        func step() -> [RequestUpdate] {
            let updates = core.step()
            for update in updates { outputs[update.id, default: []] += update.newTokens }
            return updates
        }
        for _ in 1...4 { _ = step() }
        var urgent = GenerateInput(id: "urgent", promptTokens: reference.prompts[short], params: .greedy(reference.maxNewTokens))
        urgent.priority = 20
        try core.add(urgent)
        var waited = 0
        while waited < 200, !step().contains(where: { $0.id == "urgent" && !$0.newTokens.isEmpty }) { waited += 1 }
        for (id, update) in core.runToCompletion() { outputs[id, default: []] += update.tokens }
        if threshold == 10 {
            #expect(waited <= 1 && core.preemptionCount == 1, "waited \(waited), preempted \(core.preemptionCount)")
        } else {
            #expect(waited > reference.maxNewTokens - 8 && core.preemptionCount == 0, "waited \(waited) steps")
        }
        #expect(core.retractionCount == 0)
        for (id, prompt) in [("low-a", 3), ("low-b", 4), ("urgent", short)] {
            #expect(reference.mismatch(prompt: prompt, output: outputs[id] ?? []) == nil, "\(id)")
        }
        core.flushCache()
        #expect(core.freePageCount == core.totalPageCount)
    }

    @Test func aShortPromptPassesALongOneUnderSPRF() throws {
        let reference = try ModelReference.load(fixture)
        var waited: [SchedulePolicy: Int] = [:]
        for policy in [SchedulePolicy.fcfs, .sprf] {
            let core = try core(policy)
            try core.add(GenerateInput(id: "long", promptTokens: reference.prompts[long], params: .greedy(4)))
            try core.add(GenerateInput(id: "short", promptTokens: reference.prompts[short], params: .greedy(4)))
            waited[policy] = try #require(stepsToFirstToken(core, "short", limit: 100))
            core.runToCompletion()
        }
        #expect(waited[.sprf] == 1)
        #expect(waited[.fcfs]! > 10, "under FCFS the short prompt waits for the long one's chunks")
    }

    /// A short prompt that arrives while a long one is part-way through its
    /// chunks: under SPRF it goes first in the very next step (and the long
    /// one takes the rest of that step's budget); under every other policy
    /// it waits for every remaining chunk (they order only the waiting
    /// queue). All give the oracle's tokens.
    @Test func aShortPromptPassesALongOneMidChunksUnderSPRF() throws {
        let reference = try ModelReference.load(fixture)
        var waited: [SchedulePolicy: Int] = [:]
        for policy in SchedulePolicy.allCases {
            let core = try core(policy)
            try core.add(GenerateInput(id: "long", promptTokens: reference.prompts[long], params: .greedy(reference.maxNewTokens)))
            var longTokens = core.step().filter { $0.id == "long" }.flatMap(\.newTokens)
            try core.add(GenerateInput(id: "short", promptTokens: reference.prompts[short], params: .greedy(reference.maxNewTokens)))
            for step in 1...100 where waited[policy] == nil {
                let updates = core.step()
                longTokens += updates.filter { $0.id == "long" }.flatMap(\.newTokens)
                if updates.contains(where: { $0.id == "short" && !$0.newTokens.isEmpty }) { waited[policy] = step }
            }
            longTokens += core.runToCompletion()["long"]?.tokens ?? []
            #expect(reference.mismatch(prompt: long, output: longTokens) == nil)
            core.flushCache()
            #expect(core.freePageCount == core.totalPageCount)
        }
        #expect(waited[.sprf] == 1)
        for policy in SchedulePolicy.allCases where policy != .sprf {
            #expect(waited[policy]! > 10, "under \(policy) the short prompt waits for the long one's remaining chunks")
        }
    }

    /// A steady stream of short prompts, each filling a whole step's budget:
    /// without aging the long prompt would never be admitted.
    @Test func aLongPromptStillGetsItsTurnUnderSPRF() throws {
        let reference = try ModelReference.load(fixture)
        let core = try core(.sprf)
        try core.add(GenerateInput(id: "long", promptTokens: reference.prompts[long], params: .greedy(reference.maxNewTokens)))
        var outputs: [String: [Int]] = [:]
        // 343 tokens age by 64 per later arrival: admitted after at most 6 later arrivals, then 22 chunks.
        let bound = 6 + 343 / 16 + 8
        var finished = false
        for step in 1...bound where !finished {
            try core.add(GenerateInput(id: "short-\(step)", promptTokens: reference.prompts[short], params: .greedy(1)))
            for update in core.step() {
                outputs[update.id, default: []] += update.newTokens
                if update.id == "long", update.finish != nil { finished = true }
            }
        }
        let results = core.runToCompletion()
        #expect(outputs["long"]?.isEmpty == false, "the long prompt had no token within \(bound) steps of short arrivals")
        let longTokens = (outputs["long"] ?? []) + (results["long"]?.tokens ?? [])
        #expect(reference.mismatch(prompt: long, output: longTokens) == nil)
    }

    @Test func lpmAdmitsTheCachedPrefixFirst() throws {
        let reference = try ModelReference.load(fixture)
        let core = try core(.lpm)
        // Cache prompt 19's pages, then queue an uncached prompt before it again.
        try core.add(GenerateInput(id: "warm", promptTokens: reference.prompts[19], params: .greedy(1)))
        core.runToCompletion()
        try core.add(GenerateInput(id: "cold", promptTokens: reference.prompts[18], params: .greedy(1)))
        try core.add(GenerateInput(id: "cached", promptTokens: reference.prompts[19], params: .greedy(1)))
        let cached = try #require(stepsToFirstToken(core, "cached", limit: 100))
        #expect(cached <= 2)
        let results = core.runToCompletion()
        #expect(results["cold"]?.last.finish == .length)
    }
}
