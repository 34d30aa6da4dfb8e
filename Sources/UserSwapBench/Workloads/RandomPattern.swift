import UserSwap

/// `random`: every page equally likely, independently. The worst case for any cache: with data
/// 4× the budget, three accesses in four miss, whatever reclaim does.
public struct RandomPattern: AccessPattern {
    public let pages: Int

    public init(pages: Int) {
        require(pages >= 1, "a random pattern over \(pages) pages; at least 1")
        self.pages = pages
    }

    public var summary: String { "random (uniform)" }

    public func makeCursor(thread: Int, threads: Int, pages: Int) {}

    @inline(__always)
    public func nextPage(_ cursor: inout Void, random: inout Xoshiro256StarStar) -> Int {
        random.next(below: pages)
    }
}
