/// Hands out KV cache pages and counts their owners.
///
/// A page is free (reference count 0, on the free list exactly once) or owned
/// (count ≥ 1: running requests and the prefix cache each hold one
/// reference). `release` returns a page to the free list when its last
/// owner lets go, so a page shared through the prefix cache is never freed
/// while a request still reads it.
public struct PageAllocator: Sendable {
    public let pageCount: Int
    private var freeList: [Int32]
    private var referenceCounts: [Int32]

    public init(pageCount: Int) {
        precondition(pageCount > 0, "a KV pool needs at least one page")
        self.pageCount = pageCount
        // Reversed so pages come out in ascending order: runs of consecutive
        // pages are then common, which makes KV transfers few large copies.
        freeList = (0..<Int32(pageCount)).reversed()
        referenceCounts = Array(repeating: 0, count: pageCount)
    }

    public var freeCount: Int { freeList.count }

    /// `count` fresh pages, each with one reference, or nil (and nothing taken) if too few are free.
    public mutating func allocate(_ count: Int) -> [Int32]? {
        guard count <= freeList.count else { return nil }
        let pages = Array(freeList.suffix(count).reversed())
        freeList.removeLast(count)
        for page in pages { referenceCounts[Int(page)] = 1 }
        return pages
    }

    /// Adds one reference to each (already owned) page.
    public mutating func retain(_ pages: some Sequence<Int32>) {
        for page in pages {
            precondition(referenceCounts[Int(page)] > 0, "retain of free page \(page)")
            referenceCounts[Int(page)] += 1
        }
    }

    /// Drops one reference from each page; pages reaching zero are free again.
    public mutating func release(_ pages: some Sequence<Int32>) {
        for page in pages {
            precondition(referenceCounts[Int(page)] > 0, "double free of page \(page)")
            referenceCounts[Int(page)] -= 1
            if referenceCounts[Int(page)] == 0 { freeList.append(page) }
        }
    }

    public func referenceCount(of page: Int32) -> Int { Int(referenceCounts[Int(page)]) }

    /// Every page is either free with no owners (listed once) or owned and not listed.
    public var invariantsHold: Bool {
        var listed = [Bool](repeating: false, count: pageCount)
        for page in freeList {
            if listed[Int(page)] || referenceCounts[Int(page)] != 0 { return false }
            listed[Int(page)] = true
        }
        return (0..<pageCount).allSatisfy { listed[$0] || referenceCounts[$0] > 0 }
    }
}
