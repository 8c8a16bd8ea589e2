/// Byte trie over added-token patterns that finds leftmost-longest, non-overlapping
/// matches (the semantics of the reference's Aho-Corasick `LeftmostLongest` search).
struct AddedTokenTrie {
    private struct Node {
        var children: [UInt8: Int32] = [:]
        /// Index of the pattern ending here, or -1.
        var terminal: Int32 = -1
    }

    private var nodes = [Node()]
    /// Bytes that can begin a pattern, so most text positions are rejected with one lookup.
    private var firstBytes = [Bool](repeating: false, count: 256)

    var isEmpty: Bool { nodes.count == 1 }

    /// Adds `pattern` as pattern number `index`; an empty pattern is ignored.
    mutating func insert(_ pattern: String, index: Int) {
        let bytes = Array(pattern.utf8)
        guard let first = bytes.first else { return }
        firstBytes[Int(first)] = true
        var node = 0
        for b in bytes {
            if let child = nodes[node].children[b] {
                node = Int(child)
            } else {
                nodes.append(Node())
                nodes[node].children[b] = Int32(nodes.count - 1)
                node = nodes.count - 1
            }
        }
        // Keep the first pattern registered for a given text.
        if nodes[node].terminal < 0 { nodes[node].terminal = Int32(index) }
    }

    /// Matches in `bytes` as (byte range, pattern index), left to right.
    func matches(in bytes: [UInt8]) -> [(range: Range<Int>, index: Int)] {
        var result: [(range: Range<Int>, index: Int)] = []
        if isEmpty { return result }
        var start = 0
        while start < bytes.count {
            guard firstBytes[Int(bytes[start])] else { start += 1; continue }
            var node = 0
            var best: (end: Int, index: Int)?
            var i = start
            while i < bytes.count, let child = nodes[node].children[bytes[i]] {
                node = Int(child)
                i += 1
                if nodes[node].terminal >= 0 { best = (i, Int(nodes[node].terminal)) }
            }
            if let best {
                result.append((start..<best.end, best.index))
                start = best.end
            } else {
                start += 1
            }
        }
        return result
    }
}
