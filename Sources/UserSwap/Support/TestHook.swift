#if DEBUG
import Synchronization

/// A place in the engine where a test can run code of its own, to hold a thread inside a race
/// window. Compiled in debug builds only (`#if DEBUG`, as is each use), so release builds carry
/// no trace of it; unarmed, it costs one relaxed load.
final class TestHook: Sendable {
    private let armed = Atomic<Bool>(false)
    private let action = Mutex<(@Sendable () -> Void)?>(nil, rank: .testHook)

    init() {}

    /// Runs `body` every time the hook is reached, until `disarm()`.
    func arm(_ body: @escaping @Sendable () -> Void) {
        action.withLock { $0 = body }
        armed.store(true, ordering: .releasing)
    }

    func disarm() {
        armed.store(false, ordering: .releasing)
        action.withLock { $0 = nil }
    }

    @inline(__always)
    func run() {
        // Relaxed: a hook armed a moment late misses one pass, which its test does not rely on.
        guard armed.load(ordering: .relaxed) else { return }
        action.withLock { $0 }?()
    }
}
#endif
