import CUserSwap
import Synchronization

/// A lock on a 32-bit word that lives in memory UserSwap owns (the cluster array, the frame
/// table), for the places where a `Mutex` per element would not fit: thousands of clusters,
/// millions of frames.
///
/// The recipe is the stdlib's Linux `Mutex`: the word is 0 (unlocked), 1 (locked) or 2 (locked,
/// maybe with sleepers). Locking spins briefly, then sleeps in `futex_wait`; unlocking makes a
/// `futex_wake` syscall only when the word says someone may be asleep, so an uncontended
/// lock/unlock pair is two atomic operations.
///
/// Holders keep it short: never across I/O or a wait on another lock of lower rank. In debug
/// builds it records its owner and checks the lock order (`LockOrder`) at its `rank`.
struct FutexLock {
    let word: UnsafeMutablePointer<Atomic<UInt32>>
    #if DEBUG
    let rank: LockRank
    #endif

    @inline(__always)
    init(_ word: UnsafeMutablePointer<Atomic<UInt32>>, rank: LockRank) {
        self.word = word
        #if DEBUG
        self.rank = rank
        #endif
    }

    private static let unlocked: UInt32 = 0
    private static let locked: UInt32 = 1
    private static let contended: UInt32 = 2

    @inline(__always)
    func lock() {
        #if DEBUG
        LockOrder.check(taking: rank)
        defer { LockOrder.acquired(rank, word) }
        #endif
        if word.pointee.compareExchange(
            expected: Self.unlocked, desired: Self.locked,
            ordering: .acquiring
        ).exchanged {
            return
        }
        lockSlow()
    }

    /// Takes the lock if it is free. Not checked against the lock order (it cannot wait), but
    /// recorded, in debug builds, once taken.
    @inline(__always)
    func tryLock() -> Bool {
        let taken = word.pointee.compareExchange(
            expected: Self.unlocked, desired: Self.locked,
            ordering: .acquiring
        ).exchanged
        #if DEBUG
        if taken { LockOrder.acquired(rank, word) }
        #endif
        return taken
    }

    @inline(__always)
    func unlock() {
        #if DEBUG
        LockOrder.released(word)
        #endif
        if word.pointee.exchange(Self.unlocked, ordering: .releasing) == Self.contended {
            _ = cus_futex_wake(rawWord, 1)
        }
    }

    @inline(__always)
    func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        lock()
        defer { unlock() }
        return try body()
    }

    /// For assertions: someone holds the lock (not necessarily the caller).
    var isLocked: Bool {
        // Relaxed: only used in assertions, where a stale answer just weakens the check.
        word.pointee.load(ordering: .relaxed) != Self.unlocked
    }

    @inline(never)
    private func lockSlow() {
        // A short spin first: cluster critical sections are a few dozen instructions, so the
        // holder is usually about to leave.
        for _ in 0..<64 {
            if word.pointee.load(ordering: .relaxed) == Self.unlocked,  // Relaxed: a peek; the compare-exchange acquires
                word.pointee.compareExchange(
                    expected: Self.unlocked, desired: Self.locked,
                    ordering: .acquiring
                ).exchanged
            {
                return
            }
        }
        // Announce a sleeper by storing 2; whoever unlocks will wake one thread. Having taken
        // the lock this way we keep the word at 2, which may cost one spurious wake: harmless.
        while word.pointee.exchange(Self.contended, ordering: .acquiring) != Self.unlocked {
            _ = cus_futex_wait(rawWord, Self.contended, -1)
        }
    }

    @inline(__always)
    private var rawWord: UnsafeMutablePointer<UInt32> {
        // Sound: Atomic<UInt32> has the layout of a UInt32; the kernel only compares and sleeps.
        UnsafeMutableRawPointer(word).assumingMemoryBound(to: UInt32.self)
    }
}
