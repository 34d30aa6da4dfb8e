import Synchronization

/// The LRU lists of a memory group (kernel: `struct lruvec`, anonymous half): an active and an
/// inactive list of folios, most recently added at the head, reclaimed from the tail.
///
/// The lists are threaded through two per-frame link arrays, so adding or removing a folio
/// allocates nothing. One lock (the kernel's `lru_lock`) protects lists, links, counts and the
/// folios' `.lru` and `.active` flags; its place in the lock order is `LockRank.lru`
/// (Support/LockOrder.swift).
final class LRUVec: Sendable {
    private struct State: ~Copyable {
        var next: [UInt32]
        var prev: [UInt32]
        /// Heads and tails, indexed by `List.rawValue`. Made at run time, not from literals: a
        /// literal of constants is a static array, copied (allocated) at its first change,
        /// which may come in a signal handler (`Region.pinInSignal`).
        var head: [UInt32] = Array(repeating: LRUVec.none, count: 2)
        var tail: [UInt32] = Array(repeating: LRUVec.none, count: 2)
        /// Pages (not folios) on each list.
        var pages: [Int] = Array(repeating: 0, count: 2)
    }

    enum List: Int { case inactive = 0, active = 1 }

    static let none = UInt32.max
    private let state: Mutex<State>
    /// Folios taken off the lists by reclaimers and not yet back or freed. Relaxed: a hint for
    /// an allocator deciding whether waiting for another reclaimer may help.
    let isolated = Atomic<Int>(0)
    private let frames: FrameTable

    init(frames: FrameTable) {
        self.frames = frames
        state = Mutex(
            State(
                next: Array(repeating: Self.none, count: frames.frameCount),
                prev: Array(repeating: Self.none, count: frames.frameCount)),
            rank: .lru)
    }

    /// Pages on `list`.
    func pages(_ list: List) -> Int { state.withLock { $0.pages[list.rawValue] } }

    /// Puts a folio that is on no list at the head of `list` (kernel: `folio_add_lru`).
    func add(_ f: Folio, to list: List) {
        state.withLock { s in
            require(!frames.flags(f).contains(.lru), "\(f) already on an LRU list")
            frames.endArrival(f)
            Self.link(&s, f.frame, list, pages: frames.pageCount(f))
            frames.setFlags(f, list == .active ? [.lru, .active] : .lru)
            if list == .inactive { frames.clearFlags(f, .active) }
        }
    }

    /// Puts folios that are on no list at the head of `list`, under one acquisition of the lock
    /// (kernel: a `folio_batch` drained by `lru_add_drain`): reclaim returns its batches so.
    func add(_ folios: [Folio], to list: List) {
        guard !folios.isEmpty else { return }
        state.withLock { s in
            for f in folios {
                require(!frames.flags(f).contains(.lru), "\(f) already on an LRU list")
                frames.endArrival(f)
                Self.link(&s, f.frame, list, pages: frames.pageCount(f))
                frames.setFlags(f, list == .active ? [.lru, .active] : .lru)
                if list == .inactive { frames.clearFlags(f, .active) }
            }
        }
    }

    /// Takes a folio off its list if it is on one (a folio being freed).
    func remove(_ f: Folio) {
        state.withLock { s in
            let flags = frames.flags(f)
            guard flags.contains(.lru) else { return }
            Self.unlink(&s, f.frame, flags.contains(.active) ? .active : .inactive, pages: frames.pageCount(f))
            frames.clearFlags(f, [.lru, .active])
        }
    }

    /// Moves a folio on the inactive list to the active one (kernel: `folio_activate`).
    func activate(_ f: Folio) {
        state.withLock { s in
            let flags = frames.flags(f)
            guard flags.contains(.lru), !flags.contains(.active) else { return }
            Self.unlink(&s, f.frame, .inactive, pages: frames.pageCount(f))
            Self.link(&s, f.frame, .active, pages: frames.pageCount(f))
            frames.setFlags(f, .active)
        }
    }

    /// Takes up to `max` folios from the tail of `list` with a reference each (kernel:
    /// `isolate_lru_folios`). Folios being freed (no reference to take) are skipped: whoever
    /// drops the last reference takes them off the list.
    func isolate(from list: List, max: Int, into out: inout [Folio]) {
        state.withLock { s in
            var frame = s.tail[list.rawValue]
            var scanned = 0
            while frame != Self.none && out.count < max && scanned < 4 * max {
                let f = Folio(frame: frame)
                let before = s.prev[Int(frame)]
                scanned += 1
                if frames.tryGet(f) {
                    Self.unlink(&s, frame, list, pages: frames.pageCount(f))
                    frames.clearFlags(f, [.lru, .active])
                    out.append(f)
                    isolated.add(1, ordering: .relaxed)  // Relaxed: a hint (see `isolated`); the LRU lock orders the lists
                }
                frame = before
            }
        }
    }

    private static func link(_ s: inout State, _ frame: UInt32, _ list: List, pages: Int) {
        let l = list.rawValue
        let oldHead = s.head[l]
        s.prev[Int(frame)] = none
        s.next[Int(frame)] = oldHead
        if oldHead == none { s.tail[l] = frame } else { s.prev[Int(oldHead)] = frame }
        s.head[l] = frame
        s.pages[l] += pages
    }

    private static func unlink(_ s: inout State, _ frame: UInt32, _ list: List, pages: Int) {
        let l = list.rawValue
        let p = s.prev[Int(frame)], n = s.next[Int(frame)]
        if p == none { s.head[l] = n } else { s.next[Int(p)] = n }
        if n == none { s.tail[l] = p } else { s.prev[Int(n)] = p }
        s.prev[Int(frame)] = none
        s.next[Int(frame)] = none
        s.pages[l] -= pages
    }
}
