import Profiling

/// A room's phases, as spans on its track in a profile (category `room`,
/// id `bootstrap_room`), where the engine's span of the same request
/// lies too; written once, when the side-car lets go of the room.
extension RoomTimeline {
    struct TracedPhase {
        let name: String
        let from: RoomState?
        let to: RoomState?
    }

    func trace(_ name: String, phases: [TracedPhase], room: UInt64, request: String, state: RoomState,
               args: [String: TraceValue] = [:], into recorder: TraceRecorder?) {
        guard let recorder else { return }
        let now = clock.now()
        func traceTime(_ seconds: Double) -> Double { TraceClock.before(secondsAgo: now - seconds) }
        var all = args
        all["bootstrap_room"] = .uint(room)
        all["id"] = .string(request)
        all["state"] = .string(state.failure.map { "failed: \($0.message)" } ?? "\(state)")
        let category = TraceMerge.roomCategory
        recorder.asyncSpan(name, category: category, id: room, from: traceTime(created), to: traceTime(now), args: all)
        for phase in phases {
            guard let from = phase.from.map(time) ?? created, let to = phase.to.map(time) ?? now else { continue }
            recorder.asyncSpan(phase.name, category: category, id: room, from: traceTime(from), to: traceTime(to),
                               args: ["bootstrap_room": .uint(room)])
        }
    }
}
