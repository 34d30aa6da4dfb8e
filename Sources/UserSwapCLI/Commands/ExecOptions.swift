/// The options of `userswap exec`, validated by the parser: how to run an unmodified program
/// with its heap in UserSwap's memory (docs/EXEC.md).
public struct ExecOptions: Equatable, Sendable {
    /// Where the program's heap swaps to.
    public enum Swap: Equatable, Sendable {
        /// An unnamed swap file in `directory` (nil: $TMPDIR, else /tmp), gone from the disk at
        /// once: nothing is left however the program ends.
        case temporaryFile(directory: String?)
        /// `--device FILE`: a named swap file, created if missing and kept.
        case file(String)
        /// `--device redis://…` or `unix://…`: a Redis server.
        case redis(String)
    }

    /// `--memory`: the RAM budget of the heap.
    public var memoryBytes: Int64 = 256 << 20
    /// `--swap-size`: the swap behind it; the heap holds at most budget + swap. Nil: 8 × memory.
    public var swapBytes: Int64?
    /// `--swap-dir` or `--device`: where the heap swaps to.
    public var swap: Swap = .temporaryFile(directory: nil)
    /// `--report FILE`: a JSON report at exit.
    public var reportPath: String?
    /// `--group-limit memory=SIZE`: the most RAM the program's pages may hold (the memory group's
    /// `memory.max`), at most the budget. Nil: the budget alone.
    public var groupMemoryBytes: Int64?
    /// `--group-limit swap=SIZE`: the most swap the program's pages may take (the memory group's
    /// `memory.swap.max`). Nil: the swap device alone.
    public var groupSwapBytes: Int64?
    /// `--quiet`: no summary line on stderr at exit.
    public var quiet = false
    /// `--no-encryption`: pages go to swap in clear.
    public var noEncryption = false
    /// The program and its arguments (after `--`).
    public var command: [String]

    /// The defaults, running `command`.
    public init(command: [String]) {
        self.command = command
    }

    /// The swap size in bytes: as given; else the group's swap limit and a page for the swap
    /// file's header (the program can use no more; at least the smallest swap file, 4 MiB,
    /// unless the limit is 0: then no swap); else 8 × the budget.
    public var effectiveSwapBytes: Int64 {
        if let swapBytes { return swapBytes }
        if let limit = groupSwapBytes { return limit == 0 ? 0 : max(limit + 4096, Self.smallestSwapBytes) }
        return memoryBytes * 8
    }

    /// Whether `--group-limit` gave a limit: the heap is then charged to a group of its own.
    public var hasGroupLimit: Bool { groupMemoryBytes != nil || groupSwapBytes != nil }

    /// The most the program's heap can hold: its RAM (the budget, or the group's memory limit
    /// under it) and its swap (the swap size, or the group's swap limit under it).
    public var heapCapacityBytes: Int64 {
        let swap = effectiveSwapBytes == 0 ? 0 : effectiveSwapBytes - 4096  // the swap file's header page
        return min(groupMemoryBytes ?? memoryBytes, memoryBytes) + min(groupSwapBytes ?? Int64.max, swap)
    }

    /// The smallest `--memory` and `--swap-size`.
    public static let smallestSwapBytes: Int64 = 4 << 20

    /// The heap is made of whole blocks of mimalloc's arena: its capacity, rounded down, so that
    /// the heap never holds more than the RAM and swap behind it.
    public static let heapBlockBytes: Int64 = 32 << 20
}
