import UserSwap

/// `zipf`: pages drawn by Zipf's law (θ = 0.99 by default) with the ranks scrambled over the
/// region (`ZipfSampler`): a few pages take most accesses, as in a key-value cache. With data
/// 4× the budget the hot set fits, and how many misses remain depends on whether reclaim keeps
/// it: the workload that shows what workingset detection is for.
public struct ZipfPattern: AccessPattern {
    public let sampler: ZipfSampler

    public init(pages: Int, theta: Double = 0.99, seed: UInt64) {
        require(pages >= 2, "a Zipf pattern needs at least two pages")
        sampler = ZipfSampler(count: pages, theta: theta, seed: seed)
    }

    public var summary: String { "zipf θ=\(sampler.theta)" }

    public func makeCursor(thread: Int, threads: Int, pages: Int) {}

    @inline(__always)
    public func nextPage(_ cursor: inout Void, random: inout Xoshiro256StarStar) -> Int {
        sampler.page(using: &random)
    }
}
