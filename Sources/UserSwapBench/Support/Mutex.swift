import UserSwap

/// The package's `Mutex`: the toolchain's, with its lock and unlock told to ThreadSanitizer
/// under `make tsan` (see `AnnotatedMutex`). Shadows `Synchronization.Mutex` in this module.
typealias Mutex<Value: ~Copyable> = AnnotatedMutex<Value>
