/// Which I/O engine moves a device's pages, and how it was chosen.
public enum IOEngineKind: String, Sendable, CaseIterable {
    /// Requests go to the kernel through an io_uring (liburing); a completion thread finishes them.
    case ioUring = "io_uring"
    /// Requests go to a few worker threads that call the backend (pread/pwrite for a file).
    case threadPool = "thread_pool"
    /// The calling thread does the transfer itself (memory and tier backends, or when asked).
    case synchronous
}

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

/// The engine a device got and why: shown in `SwapStatistics.ioEngine` and the bench JSON.
public struct IOEngineInfo: Sendable, Equatable, CustomStringConvertible {
    /// The engine.
    public let kind: IOEngineKind
    /// Why this engine: "asked for", "automatic: swap file", or the error that ruled io_uring out.
    public let reason: String

    public var description: String { "\(kind.rawValue) (\(reason))" }
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

    /// Sizes for an engine; the defaults suit a local SSD.
    public init(slots: Int = 256, workers: Int = 4, maxWritesInFlight: Int = 2, readsInCaller: Bool = true) {
        self.readsInCaller = readsInCaller
        precondition(slots >= 1 && workers >= 1 && maxWritesInFlight >= 1)
        self.slots = slots
        self.workers = max(workers, maxWritesInFlight + 1)
        self.maxWritesInFlight = maxWritesInFlight
    }
}
