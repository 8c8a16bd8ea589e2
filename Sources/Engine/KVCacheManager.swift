/// Who holds which KV page: the page allocator and the prefix cache behind
/// one small API. A running request owns one reference to each of its
/// pages; the prefix cache owns one to each page it caches.
final class KVCacheManager {
    let pageSize: Int
    let enablePrefixCache: Bool
    private(set) var allocator: PageAllocator
    private let prefixCache: PrefixCache

    init(pageCount: Int, pageSize: Int, enablePrefixCache: Bool) {
        self.pageSize = pageSize
        self.enablePrefixCache = enablePrefixCache
        allocator = PageAllocator(pageCount: pageCount)
        prefixCache = PrefixCache(pageSize: pageSize)
    }

    var freeCount: Int { allocator.freeCount }
    var pageCount: Int { allocator.pageCount }
    var cachedPageCount: Int { prefixCache.cachedPageCount }

    /// Pages that hold `tokens` tokens.
    func pages(for tokens: Int) -> Int { (tokens + pageSize - 1) / pageSize }

    /// Starts a request from the longest cached page-aligned prefix of its tokens.
    func admitPrefix(_ request: Request) {
        guard enablePrefixCache, request.pages.isEmpty else { return }
        // At least one token must run through the model to produce logits,
        // and prompt logprobs need the positions they are asked from.
        var matchable = Array(request.tokens.dropLast())
        if let first = request.inputLogprobStart { matchable = Array(matchable.prefix(max(0, first - 1))) }
        request.pages = prefixCache.match(matchable, allocator: &allocator)
        request.computed = request.pages.count * pageSize
        if request.outputCount == 0 { request.cachedTokenCount = request.computed }
    }

    /// Tokens of the request's prompt the prefix cache holds (nothing retained).
    func cachedPrefixLength(_ request: Request) -> Int {
        enablePrefixCache ? prefixCache.matchedPageCount(Array(request.tokens.dropLast())) * pageSize : 0
    }

    /// Gives `request` pages for positions 0..<end, evicting cached pages no
    /// one uses if needed, while leaving `headroom` pages free. False (and
    /// nothing allocated) when that is not possible without retracting someone.
    func extend(_ request: Request, to end: Int, headroom: Int = 0) -> Bool {
        let needed = pages(for: end) - request.pages.count
        guard needed > 0 else { return true }
        if allocator.freeCount < needed + headroom {
            prefixCache.evict(needed + headroom - allocator.freeCount, allocator: &allocator)
        }
        guard allocator.freeCount >= needed + headroom, let fresh = allocator.allocate(needed) else { return false }
        request.pages += fresh
        return true
    }

    /// Offers the request's computed full pages to the prefix cache, then drops its references.
    func release(_ request: Request) {
        if enablePrefixCache {
            prefixCache.insert(Array(request.tokens[..<request.computed]), pages: request.pages, allocator: &allocator)
        }
        allocator.release(request.pages)
        request.pages = []
        request.computed = 0
    }

    /// Takes the request's pages away from it without caching them: their
    /// bytes may be half written. The caller now owns one reference to each.
    func detach(_ request: Request) -> [Int32] {
        let pages = request.pages
        request.pages = []
        request.computed = 0
        return pages
    }

    /// Drops references taken with `detach`.
    func releaseDetached(_ pages: [Int32]) { allocator.release(pages) }

    /// Drops prefix-cache pages no request uses.
    func flush() { prefixCache.flush(allocator: &allocator) }
}
