import UserSwap

/// `seq`: each thread walks the pages in order from its own starting point (thread t at
/// t × pages ÷ threads) and wraps around at the end. LRU's pathological case: with data larger
/// than the budget, the page needed next is always the one evicted longest ago, so every access
/// misses once the first lap is over (and the readahead a real kernel would do is the remedy).
public struct SequentialPattern: AccessPattern {
    public let pages: Int

    public init(pages: Int) {
        require(pages >= 1, "a sequential pattern over \(pages) pages; at least 1")
        self.pages = pages
    }

    public var summary: String { "seq (sequential, wrapping)" }

    public func makeCursor(thread: Int, threads: Int, pages: Int) -> Int {
        WorkloadPhase.share(of: pages, thread: thread, threads: threads).lowerBound
    }

    @inline(__always)
    public func nextPage(_ cursor: inout Int, random: inout Xoshiro256StarStar) -> Int {
        let page = cursor
        cursor = cursor + 1 == pages ? 0 : cursor + 1
        return page
    }
}
