import Engine
import Profiling

/// A room's phases, as spans on its track in a profile (category `room`,
/// id `bootstrap_room`), where the engine's span of the same request
/// lies too; written once, when the side-car lets go of the room.
extension RoomTimeline {
    func trace(_ name: String, phases: [PhaseInterval], room: UInt64, request: String, state: RoomState,
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
        for interval in phases {
            guard let (start, end) = bounds(of: interval, now: now) else { continue }
            recorder.asyncSpan(interval.phase.rawValue, category: category, id: room, from: traceTime(start), to: traceTime(end),
                               args: ["bootstrap_room": .uint(room)])
        }
    }
}
