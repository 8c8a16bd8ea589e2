/// When each request of a run is sent: offsets in seconds from the start,
/// in order. Each workload class arrives as its own Poisson process (or all
/// at once at an infinite rate); a mixed run merges the classes' arrivals.
public struct ServingSchedule: Sendable {
    public struct Entry: Sendable {
        public var offset: Double
        public var prompt: ServingPrompt
    }

    public private(set) var entries: [Entry]

    /// Poisson arrivals at `rate` for prompts in the given order (sglang's
    /// `--request-rate`); `.infinity` puts every offset at 0.
    public static func poisson(_ prompts: [ServingPrompt], rate: Double, using rng: inout SeededGenerator) -> ServingSchedule {
        var time = 0.0
        var entries: [Entry] = []
        for prompt in prompts {
            entries.append(Entry(offset: rate.isInfinite ? 0 : time, prompt: prompt))
            if rate.isFinite { time += rng.exponential(rate: rate) }
        }
        return ServingSchedule(entries: entries)
    }

    /// Several schedules interleaved by time (a stable merge keeps each class's order at equal offsets).
    public static func merged(_ schedules: [ServingSchedule]) -> ServingSchedule {
        let all = schedules.flatMap(\.entries).enumerated().sorted { a, b in
            a.element.offset != b.element.offset ? a.element.offset < b.element.offset : a.offset < b.offset
        }.map(\.element)
        return ServingSchedule(entries: all)
    }
}
