import Engine

/// Where one room (one PD request, keyed by `bootstrap_room`) stands, on
/// either side. Rooms only move forward, and an ended room never changes
/// again: `failed` is sticky, and so is `success`.
///
/// Prefill: bootstrapping (waiting for the decode's destination) →
/// waitingForInput (destination known, prompt not computed yet) →
/// transferring (KV pages leaving) → success | failed.
/// Decode: bootstrapping (waiting for pages, resolving the prefill) →
/// waitingForInput (destination sent, no page landed yet) → transferring →
/// success | failed.
public enum RoomState: Sendable, Equatable {
    case bootstrapping
    case waitingForInput
    case transferring
    case success
    case failed(RequestFailure)

    /// Ended: nothing moves it any more.
    public var isTerminal: Bool {
        switch self {
        case .success, .failed: true
        case .bootstrapping, .waitingForInput, .transferring: false
        }
    }

    var rank: Int {
        switch self {
        case .bootstrapping: 0
        case .waitingForInput: 1
        case .transferring: 2
        case .success, .failed: 3
        }
    }

    /// The state after `next` is asked for: forward moves only, nothing out of an end.
    public func advanced(to next: RoomState) -> RoomState {
        if isTerminal { return self }
        if case .failed = next { return next }
        return next.rank > rank ? next : self
    }

    public var failure: RequestFailure? {
        if case .failed(let failure) = self { return failure }
        return nil
    }
}
