import CUserSwap
import Synchronization

/// `Synchronization.Mutex` with its lock and unlock told to ThreadSanitizer.
///
/// The toolchain's Linux `Mutex` locks with atomics inside the standard library, which is not
/// built with the sanitizer: TSan never sees the lock, so it reports every access to the state
/// a `Mutex` protects as a race, and a blanket suppression of those reports also hides the real
/// race where one side holds a lock and the other forgot it. This wrapper tells TSan "acquired"
/// right after the lock and "released" right before the unlock, on the mutex's own address,
/// which gives it the happens-before edges the lock really makes.
///
/// The annotations are compiled only with `-D USERSWAP_TSAN` (`make tsan` passes it with
/// `--sanitize=thread`); otherwise `withLock` is the toolchain's, inlined, at no cost.
///
/// Every module of the package names it `Mutex` (a typealias in each module shadows the
/// toolchain's), so code writes `Mutex` and `withLock` as usual.
///
/// In debug builds a mutex made with a rank (`init(_:rank:)`, every one of the engine's:
/// `LockRank`) also records its owner and checks the lock order as it is taken.
package struct AnnotatedMutex<Value: ~Copyable>: ~Copyable {
    #if DEBUG
    /// Where it sits in the lock order; nil for a mutex outside the engine's order. Before
    /// `base`, and `base` followed by a byte nobody reads: an empty value (`Mutex<Void>`) sits
    /// at the end of `base`, and TSan would see the lock's holder writing it where another
    /// thread reads the rank before it takes the lock (a false race, but a report).
    @usableFromInline
    let rank: LockRank?
    #endif
    @usableFromInline
    let base: Synchronization.Mutex<Value>
    #if DEBUG
    @usableFromInline
    let endOfBase: UInt8 = 0
    #endif

    /// A mutex outside the engine's lock order (other modules' own locks).
    @inlinable
    package init(_ initialValue: consuming sending Value) {
        base = Synchronization.Mutex(initialValue)
        #if DEBUG
        rank = nil
        #endif
    }

    /// A mutex of the engine, at `rank` in the lock order (`LockRank`).
    @inlinable
    package init(_ initialValue: consuming sending Value, rank: LockRank) {
        base = Synchronization.Mutex(initialValue)
        #if DEBUG
        self.rank = rank
        #endif
    }

    /// Runs `body` with the value, holding the lock (`Synchronization.Mutex.withLock`).
    @inlinable
    package borrowing func withLock<Result: ~Copyable, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        #if USERSWAP_TSAN || DEBUG
        // Sound: the mutex is non-copyable and address-only (the toolchain's is raw storage), so
        // a borrow of it is its storage, which stays put while it is borrowed. The address is
        // taken outside the lock: taking the value's would be an access TSan sees before the
        // acquire.
        let address = withUnsafePointer(to: self) { UnsafeRawPointer($0) }
        #endif
        #if DEBUG
        let rank = rank
        if let rank { LockOrder.check(taking: rank) }
        #endif
        #if USERSWAP_TSAN || DEBUG
        return try base.withLock { (value: inout sending Value) throws(E) -> sending Result in
            #if USERSWAP_TSAN
            cus_tsan_acquire(address)
            defer { cus_tsan_release(address) }
            #endif
            #if DEBUG
            if let rank { LockOrder.acquired(rank, address) }
            defer { if rank != nil { LockOrder.released(address) } }
            #endif
            return try body(&value)
        }
        #else
        return try base.withLock(body)
        #endif
    }
}

// The lock inside serializes every access to the value, as the toolchain's `Mutex` does.
extension AnnotatedMutex: @unchecked Sendable where Value: ~Copyable {}

/// The engine's `Mutex` is the annotated one.
typealias Mutex<Value: ~Copyable> = AnnotatedMutex<Value>
