import Synchronization

/// The free frames of the arena, kept by a buddy allocator (kernel: the page allocator's free
/// areas) so that large folios get naturally aligned, contiguous runs of frames.
///
/// One `Mutex` guards it: taking a frame is a pop from a per-order stack, and reclaim frees in
/// batches, so the lock is short and rarely contended.
package final class FramePool: Sendable {
    private struct State: ~Copyable {
        /// Free blocks per order, as stacks of head frames.
        var free: [[UInt32]]
        /// For a free block's head frame: its order; -1 otherwise.
        var freeOrder: [Int8]
        /// For a free block's head frame: its index in `free[order]`, for O(1) removal on merge.
        var position: [Int32]
        var freeFrames: Int
    }

    public let frameCount: Int
    private let state: Mutex<State>
    /// Free frames, readable without the lock for watermarks and statistics.
    private let freeCount: Atomic<Int>

    init(frameCount: Int) {
        self.frameCount = frameCount
        var s = State(
            free: Array(repeating: [], count: SwapCluster.orderCount),
            freeOrder: Array(repeating: -1, count: frameCount),
            position: Array(repeating: -1, count: frameCount), freeFrames: 0)
        // Each stack at its largest from the start (at most `frameCount >> order` blocks of an
        // order are free at once): a push never grows it, so taking or freeing a frame
        // allocates no memory under the lock — a fault resolved in a signal handler takes it,
        // and may interrupt a thread inside malloc (`Region.pinInSignal`).
        for order in 0..<SwapCluster.orderCount { s.free[order].reserveCapacity((frameCount >> order) + 1) }
        // Cut [0, frameCount) into the largest aligned blocks that fit.
        var frame = 0
        while frame < frameCount {
            var order = SwapCluster.maxOrder
            while order > 0 && (frame & ((1 << order) - 1) != 0 || frame + (1 << order) > frameCount) { order -= 1 }
            Self.push(&s, UInt32(frame), order)
            frame += 1 << order
        }
        s.freeFrames = frameCount
        state = Mutex(s, rank: .framePool)
        freeCount = Atomic(frameCount)
    }

    /// Frames not in use.
    public var freeFrames: Int {
        // Relaxed: a watermark check tolerates a slightly stale figure.
        freeCount.load(ordering: .relaxed)
    }

    /// Takes an aligned block of `1 << order` frames, or nil if none is free.
    func allocate(order: Int) -> UInt32? {
        let frame: UInt32? = state.withLock { s in
            var k = order
            while k <= SwapCluster.maxOrder && s.free[k].isEmpty { k += 1 }
            guard k <= SwapCluster.maxOrder else { return nil }
            let head = Self.pop(&s, k)
            // Split: give back the upper halves until the block is the size asked for.
            while k > order {
                k -= 1
                Self.push(&s, head + UInt32(1 << k), k)
            }
            s.freeFrames -= 1 << order
            // Inside the lock, so that readers never see more frames in use than exist.
            freeCount.subtract(1 << order, ordering: .relaxed)  // Relaxed: a lockless reader only estimates; the lock orders the lists
            return head
        }
        return frame
    }

    /// Returns a block taken with `allocate(order:)`, merging it with its free buddies.
    func free(_ head: UInt32, order: Int) {
        state.withLock { s in
            var frame = Int(head)
            var k = order
            while k < SwapCluster.maxOrder {
                let buddy = frame ^ (1 << k)
                guard buddy + (1 << k) <= frameCount, s.freeOrder[buddy] == Int8(k) else { break }
                Self.remove(&s, UInt32(buddy), k)
                frame = min(frame, buddy)
                k += 1
            }
            Self.push(&s, UInt32(frame), k)
            s.freeFrames += 1 << order
            freeCount.add(1 << order, ordering: .relaxed)  // Relaxed: as in `allocate`
        }
    }

    private static func push(_ s: inout State, _ frame: UInt32, _ order: Int) {
        s.freeOrder[Int(frame)] = Int8(order)
        s.position[Int(frame)] = Int32(s.free[order].count)
        s.free[order].append(frame)
    }

    private static func pop(_ s: inout State, _ order: Int) -> UInt32 {
        let frame = s.free[order].removeLast()
        s.freeOrder[Int(frame)] = -1
        s.position[Int(frame)] = -1
        return frame
    }

    private static func remove(_ s: inout State, _ frame: UInt32, _ order: Int) {
        let i = Int(s.position[Int(frame)])
        let last = s.free[order].removeLast()
        if last != frame {
            s.free[order][i] = last
            s.position[Int(last)] = Int32(i)
        }
        s.freeOrder[Int(frame)] = -1
        s.position[Int(frame)] = -1
    }

    /// Free blocks per order, for invariant checks and reports.
    var freeBlocksPerOrder: [Int] { state.withLock { s in s.free.map(\.count) } }
}
