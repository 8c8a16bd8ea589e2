/// A Thompson automaton over UTF-8 bytes, built from a `RegexNode`. Each
/// state either consumes one byte from a range, forks without consuming,
/// or accepts. Built back to front: every piece is compiled knowing where
/// it continues, so no fragment lists need patching.
struct ByteNFA: Sendable {
    enum State: Sendable {
        case byte(ClosedRange<UInt8>, next: Int32)
        case fork([Int32])
        case accept
    }

    private(set) var states: [State] = [.accept]
    private(set) var start: Int32 = 0

    /// More states than this is a constraint too large to serve (each
    /// counted repetition copies its body).
    static let maxStates = 400_000

    init(_ node: RegexNode) throws(GrammarError) {
        start = try compile(node, next: 0)
    }

    private mutating func add(_ state: State) throws(GrammarError) -> Int32 {
        guard states.count < Self.maxStates else {
            throw GrammarError("the constraint is too large (more than \(Self.maxStates) automaton states); use fewer or smaller counted repetitions")
        }
        states.append(state)
        return Int32(states.count - 1)
    }

    private mutating func compile(_ node: RegexNode, next: Int32) throws(GrammarError) -> Int32 {
        switch node {
        case .empty:
            return next
        case .never:
            return try add(.fork([]))
        case .scalars(let set):
            var starts: [Int32] = []
            for sequence in set.utf8Sequences {
                var target = next
                for range in sequence.reversed() { target = try add(.byte(range, next: target)) }
                starts.append(target)
            }
            return starts.count == 1 ? starts[0] : try add(.fork(starts))
        case .sequence(let items):
            var target = next
            for item in items.reversed() { target = try compile(item, next: target) }
            return target
        case .choice(let branches):
            var starts: [Int32] = []
            for branch in branches { starts.append(try compile(branch, next: next)) }
            return try add(.fork(starts))
        case let .repetition(body, min, max):
            var target = next
            if let max {
                // Each optional copy may stop the repetition: it forks to `next`.
                for _ in 0..<(max - min) { target = try add(.fork([try compile(body, next: target), next])) }
            } else {
                let loop = try add(.fork([]))
                let bodyStart = try compile(body, next: loop)
                states[Int(loop)] = .fork([bodyStart, next])
                target = loop
            }
            for _ in 0..<min { target = try compile(body, next: target) }
            return target
        case let .list(item, separator, nonEmpty):
            // item → fork(separator → item, next): the item's one copy loops.
            let fork = try add(.fork([]))
            let itemStart = try compile(item, next: fork)
            states[Int(fork)] = .fork([try compile(separator, next: itemStart), next])
            return nonEmpty ? itemStart : try add(.fork([itemStart, next]))
        }
    }

    /// The byte-consuming and accepting states reachable from `roots`
    /// without consuming a byte, sorted (a deterministic state's identity).
    func closure(_ roots: [Int32]) -> [Int32] {
        var seen = Set<Int32>()
        var stack = roots
        var out: [Int32] = []
        while let s = stack.popLast() {
            guard seen.insert(s).inserted else { continue }
            switch states[Int(s)] {
            case .fork(let targets): stack += targets
            case .byte, .accept: out.append(s)
            }
        }
        return out.sorted()
    }
}
