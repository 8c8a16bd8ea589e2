import Engine
import Profiling

/// One request on the decode side, from admission until its pages are
/// either running in the engine or back in the allocator. Guarded by the
/// side-car's lock.
final class DecodeRoom: @unchecked Sendable {
    let id: String
    let number: UInt64
    let target: BootstrapTarget
    let promptCount: Int
    private(set) var timeline: RoomTimeline
    var created: Double { timeline.created }
    private(set) var state = RoomState.bootstrapping
    /// Preallocated destination pages (empty while in the prealloc queue).
    var pages: [Int32] = []
    private var landed: [Bool] = []
    private(set) var landedCount = 0
    var metadata: TransferMessage.Metadata?
    var link: PrefillLink?
    /// The destination went (or is going) out: from here on the prefill may write into `pages`.
    var destinationSent = false
    /// Readers inside `land` for this room right now.
    var landing = 0
    /// The engine ended the request; its pages are leased to the side-car until nothing can write them.
    var ended = false
    /// The prefill confirmed it will write nothing more for this room (abortAck, its own abort, or a final status).
    var peerDone = false

    init(id: String, number: UInt64, target: BootstrapTarget, promptCount: Int, clock: any MonotonicClock) {
        self.id = id
        self.number = number
        self.target = target
        self.promptCount = promptCount
        timeline = RoomTimeline(clock: clock)
    }

    func move(to next: RoomState) {
        state = state.advanced(to: next)
        timeline.record(state)
    }
    func fail(_ failure: RequestFailure) { move(to: .failed(failure)) }

    func assign(pages: [Int32]) {
        self.pages = pages
        landed = Array(repeating: false, count: pages.count)
    }

    /// Whether pages `first..<first+count` of the room's list may be written now.
    func accepts(first: Int, count: Int) -> Bool {
        !ended && !state.isTerminal && destinationSent && count > 0 && first >= 0 && first + count <= pages.count
    }

    /// Records pages that landed; each page counts once however often it is reported.
    func markLanded(first: Int, count: Int) {
        for i in first..<first + count where !landed[i] {
            landed[i] = true
            landedCount += 1
        }
        move(to: .transferring)
    }

    var allLanded: Bool { landedCount == pages.count }

    /// This half's PD phases: reserving pages and reaching the prefill,
    /// waiting for the KV (the prefill's queue, compute and transfer), and
    /// waiting for a place in the running batch.
    static let phaseIntervals = [
        PhaseInterval(phase: .decodeBootstrapWait, from: nil, to: .waitingForInput),
        PhaseInterval(phase: .kvWait, from: .waitingForInput, to: .success),
        PhaseInterval(phase: .decodeQueueWait, from: .success, to: nil),
    ]

    /// The phases until now.
    var phases: RequestPhases { timeline.phases(Self.phaseIntervals) }

    /// The room's spans in a profile, when the side-car lets go of it.
    func trace(into recorder: TraceRecorder?) {
        timeline.trace("decode room", phases: Self.phaseIntervals, room: number, request: id, state: state,
                       args: ["pages": .int(pages.count)], into: recorder)
    }
}
