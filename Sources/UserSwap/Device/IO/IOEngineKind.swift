/// What a space asks for; `automatic` is the default.
public enum IOEngineChoice: String, Sendable, CaseIterable {
    /// io_uring for a swap file, falling back to the thread pool when the kernel refuses it
    /// (ENOSYS, EPERM, ENOMEM); the calling thread for any other backend, whose transfers are
    /// memory copies or calls that already batch on their own (a tier, Redis).
    case automatic
    /// io_uring for a swap file (the thread pool when the kernel refuses it, or for any other
    /// backend; `SwapStatistics.ioEngine` says which and why).
    case ioUring = "io_uring"
    /// Worker threads for every device.
    case threadPool = "thread_pool"
    /// The calling thread transfers its own pages, for every device.
    case synchronous
}

/// A backend whose transfers do CPU work and then block on a swap file (a tier that seals
/// pages over one): the automatic choice gives it pool workers, so that a write-back neither
/// blocks reclaim nor waits behind a fault's read.
protocol FileBackedTransfers: SwapBackend {
    /// Whether the file is there (the tier may sit over another backend).
    var isFileBacked: Bool { get }
}

/// Sizes of an I/O engine.
public struct IOEngineOptions: Sendable, Equatable {
    /// Request slots, preallocated: requests in flight at once (more are done by the caller).
    public var slots: Int
    /// Worker threads of the thread pool.
    public var workers: Int
    /// Write-backs in flight at once: the rest wait in the engine's queue, so that the device's
    /// queue never holds more than this many writes in front of a fault's read.
    public var maxWritesInFlight: Int
    /// A read its caller waits for at once (a fault's) is done by the caller itself, with one
    /// pread: no engine queue is ahead of it, and no thread hand-off sits between the device's
    /// completion and the fault (two wake-ups on a loaded two-core machine cost more than the
    /// read's own microseconds of CPU; see docs/PERFORMANCE.md, *I/O engines*). Reads submitted without
    /// waiting, and every write, still go through the engine.
    public var readsInCaller: Bool

    /// Sizes for an engine; the defaults suit a local SSD. Each must be at least 1: a space
    /// given less throws `.invalidArgument` (`validate()`).
    public init(slots: Int = 256, workers: Int = 4, maxWritesInFlight: Int = 2, readsInCaller: Bool = true) {
        self.readsInCaller = readsInCaller
        self.slots = slots
        self.workers = max(workers, maxWritesInFlight + 1)
        self.maxWritesInFlight = maxWritesInFlight
    }

    /// Throws `.invalidArgument` unless every size is at least 1.
    public func validate() throws(SwapError) {
        guard slots >= 1, workers >= 1, maxWritesInFlight >= 1 else {
            throw SwapError(
                .invalidArgument,
                "I/O engine sizes of \(slots) slots, \(workers) workers and \(maxWritesInFlight) writes in flight; give each at least 1"
            )
        }
    }
}
