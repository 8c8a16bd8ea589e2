import Engine
import Testing

struct PageAllocatorTests {
    @Test func allocationIsAllOrNothing() {
        var allocator = PageAllocator(pageCount: 4)
        #expect(allocator.allocate(5) == nil)
        #expect(allocator.freeCount == 4)
        let pages = allocator.allocate(3)
        #expect(pages == [0, 1, 2], "fresh pages come out in ascending runs")
        #expect(allocator.freeCount == 1 && allocator.invariantsHold)
    }

    @Test func sharedPagesFreeOnlyWithTheLastOwner() {
        var allocator = PageAllocator(pageCount: 2)
        let pages = allocator.allocate(1)!
        allocator.retain(pages)
        allocator.release(pages)
        #expect(allocator.freeCount == 1 && allocator.referenceCount(of: pages[0]) == 1)
        allocator.release(pages)
        #expect(allocator.freeCount == 2 && allocator.invariantsHold)
    }

    /// Random admit / finish / retract / abort sequences through the prefix
    /// cache: every page stays free-or-owned, and flushing returns the pool.
    @Test(arguments: 1...8)
    func randomLifecyclesKeepInvariants(seed: UInt64) {
        var rng = RandomSource(seed: seed)
        let pageSize = 4
        var allocator = PageAllocator(pageCount: 40)
        let cache = PrefixCache(pageSize: pageSize)
        var live: [(tokens: [Int32], pages: [Int32])] = []
        for _ in 0..<400 {
            let action = rng.next() % 3
            if action == 0 || live.isEmpty {
                // Admit: prompts share a few prefixes so the cache gets hits.
                let family = Int32(rng.next() % 3)
                let length = 1 + Int(rng.next() % 20)
                let tokens = (0..<length).map { $0 < 8 ? family : Int32(rng.next() % 5) }
                var pages = cache.match(Array(tokens.dropLast()), allocator: &allocator)
                let needed = (length + pageSize - 1) / pageSize - pages.count
                if allocator.freeCount < needed { cache.evict(needed - allocator.freeCount, allocator: &allocator) }
                guard let fresh = allocator.allocate(needed) else {
                    allocator.release(pages)
                    continue
                }
                pages += fresh
                live.append((tokens, pages))
            } else {
                // Finish or retract (both offer pages to the cache) or abort (just release).
                let index = Int(rng.next() % UInt64(live.count))
                let victim = live.remove(at: index)
                if action == 1 { cache.insert(victim.tokens, pages: victim.pages, allocator: &allocator) }
                allocator.release(victim.pages)
            }
            #expect(allocator.invariantsHold)
        }
        for request in live { allocator.release(request.pages) }
        cache.flush(allocator: &allocator)
        #expect(allocator.freeCount == 40 && cache.cachedPageCount == 0)
    }
}
