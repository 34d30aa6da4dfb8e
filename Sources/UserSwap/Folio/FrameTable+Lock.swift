import CUserSwap
import Glibc
import Synchronization

/// The folio lock and the writeback wait, on the folio's flags word (kernel: `folio_lock`,
/// `folio_unlock`, `folio_wait_locked`, `folio_wait_writeback`).
///
/// A waiter sets a waiters bit before sleeping in `futex_wait` on the whole word; the unlocker
/// clears both bits in one atomic step and calls `futex_wake` only if the waiters bit was set, so
/// an uncontended lock/unlock costs two atomic operations and no syscall. Waking is wake-all:
/// everybody waiting for a swap-in wants to proceed once its I/O is done (as the kernel's
/// non-exclusive folio waits); those who then need the lock set the bit again.
extension FrameTable {
    /// How long a folio-lock waiter spins before it sleeps.
    static let spinNanoseconds: UInt64 = 20_000

    /// Takes the folio lock, sleeping while someone else holds it. Never call with a lock of
    /// lower rank held (`LockRank.folio`: a page-table or cluster lock, for instance).
    @inline(__always)
    public func lock(_ f: Folio) {
        #if DEBUG
        LockOrder.check(taking: .folio)
        #endif
        if !tryLock(f) { waitBit(f, FolioFlags.locked.rawValue, FolioFlags.waiters.rawValue, take: true) }
    }

    /// Takes the folio lock if it is free.
    @inline(__always)
    public func tryLock(_ f: Folio) -> Bool {
        let word = storage.flags(f.frame)
        var old = word.pointee.load(ordering: .relaxed)  // Relaxed: a peek; the compare-exchange below acquires
        while old & FolioFlags.locked.rawValue == 0 {
            let (done, now) = word.pointee.compareExchange(
                expected: old, desired: old | FolioFlags.locked.rawValue,
                ordering: .acquiring)
            if done { return true }
            old = now
        }
        return false
    }

    /// Releases the folio lock and wakes everyone waiting for it.
    @inline(__always)
    public func unlock(_ f: Folio) {
        let wasSet = clearBitAndWake(f, FolioFlags.locked.rawValue, FolioFlags.waiters.rawValue)
        require(wasSet, "unlock of unlocked \(f)")
    }

    /// Sleeps until the folio is unlocked, without taking the lock (kernel: `folio_wait_locked`).
    public func waitUnlocked(_ f: Folio) {
        #if DEBUG
        LockOrder.check(taking: .folio)
        #endif
        if flags(f).contains(.locked) {
            waitBit(f, FolioFlags.locked.rawValue, FolioFlags.waiters.rawValue, take: false)
        }
    }

    @inline(__always)
    public func isLocked(_ f: Folio) -> Bool { flags(f).contains(.locked) }

    /// Marks the folio under writeback. Caller holds the folio lock.
    func startWriteback(_ f: Folio) {
        assert(isLocked(f))
        let old = setFlags(f, .writeback)
        require(!old.contains(.writeback), "\(f) already under writeback")
    }

    /// Ends writeback and wakes whoever waits for it (kernel: `folio_end_writeback`).
    func endWriteback(_ f: Folio) {
        let wasSet = clearBitAndWake(f, FolioFlags.writeback.rawValue, FolioFlags.writebackWaiters.rawValue)
        require(wasSet, "\(f) was not under writeback")
    }

    /// Clears `bit`, its waiters bit and the async waiters bit in one atomic step, and wakes
    /// the sleeping threads only if the waiters bit was set, the suspended tasks only if the
    /// async one was (one test of the old word for both). Returns whether `bit` was set.
    @inline(__always)
    private func clearBitAndWake(_ f: Folio, _ bit: UInt32, _ waitersBit: UInt32) -> Bool {
        let async = FolioFlags.asyncWaiters.rawValue
        let old = storage.flags(f.frame).pointee.bitwiseAnd(~(bit | waitersBit | async), ordering: .releasing).oldValue
        if old & (waitersBit | async) != 0 { wakeAll(f, old, waitersBit) }
        return old & bit != 0
    }

    /// The slow half of `clearBitAndWake`: someone waits.
    @inline(never)
    private func wakeAll(_ f: Folio, _ old: UInt32, _ waitersBit: UInt32) {
        if old & waitersBit != 0 { wake(f) }
        if old & FolioFlags.asyncWaiters.rawValue != 0 { waitTable.wake(f.frame) }
    }

    /// Sleeps until writeback of the folio ends (kernel: `folio_wait_writeback`).
    public func waitWriteback(_ f: Folio) {
        #if DEBUG
        LockOrder.check(taking: .folio)
        #endif
        if flags(f).contains(.writeback) {
            waitBit(f, FolioFlags.writeback.rawValue, FolioFlags.writebackWaiters.rawValue, take: false)
        }
    }

    /// Waits until `bit` is clear; with `take`, sets it atomically as it clears (a lock).
    @inline(never)
    private func waitBit(_ f: Folio, _ bit: UInt32, _ waitersBit: UInt32, take: Bool) {
        let word = storage.flags(f.frame)
        // Sound: Atomic<UInt32> has a UInt32's layout; the kernel only compares and sleeps.
        let raw = UnsafeMutableRawPointer(word).assumingMemoryBound(to: UInt32.self)
        var spins = 0
        var spinStart: UInt64 = 0
        while true {
            let old = word.pointee.load(ordering: .acquiring)
            if old & bit == 0 {
                if !take { return }
                if word.pointee.compareExchange(expected: old, desired: old | bit, ordering: .acquiring).exchanged { return }
                continue
            }
            // The holder of a folio lock is usually reading a page: a few microseconds from
            // memory or the page cache. Sleeping and waking costs more than that, so spin first
            // (yielding the CPU, in case the holder waits for it), then sleep.
            if spins == 0 { spinStart = cus_monotonic_ns() }
            spins += 1
            if spins & 15 != 0 || cus_monotonic_ns() - spinStart < Self.spinNanoseconds { continue }
            if old & waitersBit == 0 {
                // Relaxed: only announces a sleeper; the futex wait re-checks the word, the lock is taken acquiring
                if !word.pointee.compareExchange(expected: old, desired: old | waitersBit, ordering: .relaxed).exchanged {
                    continue
                }
            }
            // Returns at once if any bit of the word changed meanwhile (EAGAIN): we re-check.
            yieldPoint(.blocking)
            _ = cus_futex_wait(raw, old | waitersBit, -1)
        }
    }

    @inline(__always)
    private func wake(_ f: Folio) {
        let raw = UnsafeMutableRawPointer(storage.flags(f.frame)).assumingMemoryBound(to: UInt32.self)
        _ = cus_futex_wake(raw, Int32.max)
    }
}
