/// Keeps the KV pages of finished (or retracted) requests so that later
/// requests sharing a prompt prefix skip recomputing it.
///
/// A trie whose edges are whole pages of tokens: a node stands for the
/// prefix ending with its page, and holds one reference to that page. Only
/// full pages are cached, so a match is always page-aligned. Leaves that no
/// request uses are evicted least recently used first when pages run out.
public final class PrefixCache {
    final class Node {
        var children: [[Int32]: Node] = [:]
        let page: Int32
        let key: [Int32]
        weak var parent: Node?
        var lastUsed: UInt64 = 0
        init(page: Int32, key: [Int32], parent: Node?) {
            self.page = page
            self.key = key
            self.parent = parent
        }
    }

    public let pageSize: Int
    private let root = Node(page: -1, key: [], parent: nil)
    private var clock: UInt64 = 0
    public private(set) var cachedPageCount = 0

    public init(pageSize: Int) { self.pageSize = pageSize }

    /// The pages caching the longest page-aligned prefix of `tokens`, each
    /// retained once more for the caller, who must release them.
    public func match(_ tokens: [Int32], allocator: inout PageAllocator) -> [Int32] {
        clock += 1
        var node = root
        var pages: [Int32] = []
        var start = 0
        while start + pageSize <= tokens.count, let child = node.children[Array(tokens[start..<start + pageSize])] {
            child.lastUsed = clock
            pages.append(child.page)
            node = child
            start += pageSize
        }
        allocator.retain(pages)
        return pages
    }

    /// How many whole pages of `tokens` the cache holds, without retaining or touching them.
    public func matchedPageCount(_ tokens: [Int32]) -> Int {
        var node = root
        var count = 0
        while (count + 1) * pageSize <= tokens.count, let child = node.children[Array(tokens[count * pageSize..<(count + 1) * pageSize])] {
            node = child
            count += 1
        }
        return count
    }

    /// Records that `pages` hold the KV of `tokens` (full pages only; a
    /// trailing partial page is ignored). Pages new to the cache get a
    /// reference; where the cache already has the prefix it keeps its own page.
    public func insert(_ tokens: [Int32], pages: [Int32], allocator: inout PageAllocator) {
        clock += 1
        var node = root
        let fullPages = min(tokens.count / pageSize, pages.count)
        for i in 0..<fullPages {
            let key = Array(tokens[i * pageSize..<(i + 1) * pageSize])
            if let child = node.children[key] {
                node = child
            } else {
                let child = Node(page: pages[i], key: key, parent: node)
                node.children[key] = child
                allocator.retain([pages[i]])
                cachedPageCount += 1
                node = child
            }
            node.lastUsed = clock
        }
    }

    /// Frees up to `count` pages that only the cache holds, least recently
    /// used leaves first. Returns how many were freed.
    @discardableResult
    public func evict(_ count: Int, allocator: inout PageAllocator) -> Int {
        var freed = 0
        while freed < count {
            // Leaves only the cache references; evicting one can expose its parent.
            var candidates: [Node] = []
            collectEvictableLeaves(root, allocator: allocator, into: &candidates)
            if candidates.isEmpty { break }
            candidates.sort { $0.lastUsed < $1.lastUsed }
            for leaf in candidates where freed < count {
                leaf.parent?.children[leaf.key] = nil
                allocator.release([leaf.page])
                cachedPageCount -= 1
                freed += 1
            }
        }
        return freed
    }

    /// Drops every page no request is using.
    public func flush(allocator: inout PageAllocator) {
        evict(Int.max, allocator: &allocator)
    }

    private func collectEvictableLeaves(_ node: Node, allocator: PageAllocator, into out: inout [Node]) {
        for child in node.children.values {
            if child.children.isEmpty {
                if allocator.referenceCount(of: child.page) == 1 { out.append(child) }
            } else {
                collectEvictableLeaves(child, allocator: allocator, into: &out)
            }
        }
    }
}
