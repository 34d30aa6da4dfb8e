/// Which page a thread touches next: the part that distinguishes the `random`, `seq` and `zipf`
/// workloads (`PageAccessWorkload` does the rest). Each thread has its own cursor and generator,
/// so patterns need no shared state and a seeded run repeats its per-thread sequences.
public protocol AccessPattern: Sendable {
    /// A thread's position in the pattern.
    associatedtype Cursor
    /// "zipf θ=0.99", "random", "seq".
    var summary: String { get }
    /// Thread `thread`'s starting cursor over `pages` pages.
    func makeCursor(thread: Int, threads: Int, pages: Int) -> Cursor
    /// The next page, in 0..<pages.
    func nextPage(_ cursor: inout Cursor, random: inout Xoshiro256StarStar) -> Int
}
