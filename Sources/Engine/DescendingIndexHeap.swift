/// Indices of an array in descending order of value (ties: lower index
/// first), produced lazily: building is O(n), each `pop` O(log n). The
/// sampler takes only the few best tokens it needs this way instead of
/// sorting the whole vocabulary for every sampled token.
struct DescendingIndexHeap {
    private let values: [Float]
    private var heap: [Int32]

    init(_ values: [Float]) {
        self.values = values
        heap = (0..<Int32(values.count)).map { $0 }
        var i = heap.count / 2 - 1
        while i >= 0 {
            siftDown(i)
            i -= 1
        }
    }

    var isEmpty: Bool { heap.isEmpty }

    /// The index of the largest remaining value.
    mutating func pop() -> Int? {
        guard let top = heap.first else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            siftDown(0)
        }
        return Int(top)
    }

    /// Whether index `a` comes before index `b`.
    @inline(__always)
    private func before(_ a: Int32, _ b: Int32) -> Bool {
        let x = values[Int(a)], y = values[Int(b)]
        return x > y || (x == y && a < b)
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        let count = heap.count
        while true {
            let left = 2 * parent + 1
            guard left < count else { return }
            var best = left
            if left + 1 < count, before(heap[left + 1], heap[left]) { best = left + 1 }
            guard before(heap[best], heap[parent]) else { return }
            heap.swapAt(best, parent)
            parent = best
        }
    }
}
