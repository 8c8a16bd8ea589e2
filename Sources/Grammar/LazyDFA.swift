/// The deterministic automaton of a `ByteNFA`, built as it is walked: a
/// state is a set of NFA states, made the first time a byte leads to it.
/// State 0 is dead (no continuation can match). Not thread-safe: its owner
/// (`Grammar`) serialises access.
struct LazyDFA {
    private let nfa: ByteNFA
    private var members: [[Int32]] = [[]]
    private var index: [[Int32]: Int32] = [[]: 0]
    private(set) var accepting: [Bool] = [false]
    /// 256 entries per state: the next state, or `unknown`.
    private var table: [Int32] = Array(repeating: 0, count: 256)
    private static let unknown: Int32 = -1
    static let dead: Int32 = 0
    private(set) var start: Int32 = 0

    /// More states than this fail the request that needed them (see
    /// `GrammarMatcher`): each state's table row is 1 KB, so a grammar's
    /// automaton stays within 16 MB.
    static let maxStates = 16_384

    init(_ nfa: ByteNFA) {
        self.nfa = nfa
        start = intern(nfa.closure([nfa.start]))
    }

    var stateCount: Int { members.count }

    /// The state after `byte`; nil when the automaton outgrew `maxStates`.
    mutating func next(_ state: Int32, _ byte: UInt8) -> Int32? {
        let slot = Int(state) &* 256 &+ Int(byte)
        let known = table[slot]
        if known != Self.unknown { return known }
        var targets: [Int32] = []
        for s in members[Int(state)] {
            if case let .byte(range, next) = nfa.states[Int(s)], range.contains(byte) { targets.append(next) }
        }
        let set = nfa.closure(targets)
        guard index[set] != nil || members.count < Self.maxStates else { return nil }
        let target = intern(set)
        table[slot] = target
        return target
    }

    private mutating func intern(_ set: [Int32]) -> Int32 {
        if let existing = index[set] { return existing }
        let id = Int32(members.count)
        members.append(set)
        index[set] = id
        accepting.append(set.contains { if case .accept = nfa.states[Int($0)] { true } else { false } })
        table += repeatElement(Self.unknown, count: 256)
        return id
    }
}
