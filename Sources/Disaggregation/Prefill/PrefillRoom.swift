import Engine
import Profiling

/// Where a prefill room's KV goes: the decode connection it came on and the
/// decode's page ids for the prompt.
struct PrefillDestination {
    let link: DecodeLink
    let pages: [Int32]
    let promptLength: Int
    let arrived: Double
}

/// One request on the prefill side, from admission until its last transfer
/// job ran. Guarded by the side-car's lock.
final class PrefillRoom: @unchecked Sendable {
    let id: String
    let number: UInt64
    let promptCount: Int
    private(set) var timeline: RoomTimeline
    var created: Double { timeline.created }
    private(set) var state = RoomState.bootstrapping
    private(set) var destination: PrefillDestination?
    /// Prompt pages handed to transfer jobs so far.
    var sentPages = 0
    /// Transfer jobs queued or running; the prompt's pages stay held while any is.
    var pendingJobs = 0
    /// The engine reported the request's end (it sits in the inflight queue).
    var ended = false
    /// The decode side has been told the room failed (or told us itself).
    var peerKnowsFailure = false

    init(id: String, number: UInt64, promptCount: Int, clock: any MonotonicClock) {
        self.id = id
        self.number = number
        self.promptCount = promptCount
        timeline = RoomTimeline(clock: clock)
    }

    func move(to next: RoomState) {
        state = state.advanced(to: next)
        timeline.record(state)
    }

    func fail(_ failure: RequestFailure) { move(to: .failed(failure)) }

    /// Binds the decode's destination, refusing one that does not fit the prompt.
    func bind(_ destination: PrefillDestination, pageSize: Int) -> RequestFailure? {
        let needed = (promptCount + pageSize - 1) / pageSize
        guard destination.promptLength == promptCount, destination.pages.count == needed else {
            return RequestFailure(.invalidPeerData, "decode's destination for room \(number) does not fit: \(destination.pages.count) pages for \(destination.promptLength) tokens, the prompt has \(promptCount) tokens (\(needed) pages)")
        }
        self.destination = destination
        move(to: .waitingForInput)
        return nil
    }

    /// This half's PD phases: the wait for the decode's destination, and the KV transfer.
    static let phaseIntervals = [
        PhaseInterval(phase: .prefillBootstrapWait, from: nil, to: .waitingForInput),
        PhaseInterval(phase: .kvTransfer, from: .transferring, to: .success),
    ]

    /// The phases, and the bytes of the `bytesPerPage`-byte pages sent.
    func phases(bytesPerPage: Int) -> RequestPhases {
        var phases = timeline.phases(Self.phaseIntervals)
        phases.transferBytes = sentPages * bytesPerPage
        return phases
    }

    /// The room's spans in a profile, when the side-car lets go of it.
    func trace(bytesPerPage: Int, into recorder: TraceRecorder?) {
        timeline.trace("prefill room", phases: Self.phaseIntervals, room: number, request: id, state: state,
                       args: ["pages": .int(sentPages), "bytes": .int(sentPages * bytesPerPage)], into: recorder)
    }

    /// No more transfer work and the engine is done with the request.
    var isSettled: Bool { ended && pendingJobs == 0 }
}
