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
package struct AnnotatedMutex<Value: ~Copyable>: ~Copyable {
    @usableFromInline
    let base: Synchronization.Mutex<Value>

    @inlinable
    package init(_ initialValue: consuming sending Value) {
        base = Synchronization.Mutex(initialValue)
    }

    /// Runs `body` with the value, holding the lock (`Synchronization.Mutex.withLock`).
    @inlinable
    package borrowing func withLock<Result: ~Copyable, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        #if USERSWAP_TSAN
        // Sound: the mutex is non-copyable and address-only (the toolchain's is raw storage), so
        // a borrow of it is its storage, which stays put while it is borrowed. The address is
        // taken outside the lock: taking the value's would be an access TSan sees before the
        // acquire.
        let address = withUnsafePointer(to: self) { UnsafeRawPointer($0) }
        return try base.withLock { (value: inout sending Value) throws(E) -> sending Result in
            cus_tsan_acquire(address)
            defer { cus_tsan_release(address) }
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
