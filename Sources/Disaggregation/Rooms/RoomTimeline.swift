import Engine

/// One PD phase of a room: from first reaching `from` (nil: the room's
/// creation) until first reaching `to` (nil: now).
struct PhaseInterval: Sendable {
    let phase: RequestPhases.Phase
    let from: RoomState?
    let to: RoomState?
}

/// When a room first reached each state, on its side-car's clock: the
/// bootstrap and KV phases its request reports (`RequestPhases`).
struct RoomTimeline {
    let clock: any MonotonicClock
    let created: Double
    private var reached: [Double?] = [nil, nil, nil, nil]

    init(clock: any MonotonicClock) {
        self.clock = clock
        created = clock.now()
    }

    /// Notes the state a room has just moved to (only its first arrival there counts).
    mutating func record(_ state: RoomState) {
        if reached[state.rank] == nil { reached[state.rank] = clock.now() }
    }

    /// When the room first reached `state`'s rank, if it did.
    func time(_ state: RoomState) -> Double? { reached[state.rank] }

    /// When `interval` began and ended (its `to` nil: `now`); nil if either state was never reached.
    func bounds(of interval: PhaseInterval, now: Double) -> (start: Double, end: Double)? {
        guard let start = interval.from.map(time) ?? created, let end = interval.to.map(time) ?? now else { return nil }
        return (start, end)
    }

    /// The seconds of each interval that has both ends, as the request reports them.
    func phases(_ intervals: [PhaseInterval]) -> RequestPhases {
        let now = clock.now()
        var phases = RequestPhases()
        for interval in intervals {
            phases[interval.phase] = bounds(of: interval, now: now).map { $0.end - $0.start }
        }
        return phases
    }
}
