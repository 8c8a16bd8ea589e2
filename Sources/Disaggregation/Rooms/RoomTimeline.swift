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

    /// Seconds from reaching `start` (nil: creation) until `end` (nil: now); nil if either was never reached.
    func seconds(from start: RoomState?, to end: RoomState?) -> Double? {
        guard let from = start.map(time) ?? created, let to = end.map(time) ?? clock.now() else { return nil }
        return to - from
    }
}
