/// Which I/O engine moves a device's pages, and how it was chosen.
public enum IOEngineKind: String, Sendable, CaseIterable {
    /// Requests go to the kernel through an io_uring (liburing); a completion thread finishes them.
    case ioUring = "io_uring"
    /// Requests go to a few worker threads that call the backend (pread/pwrite for a file).
    case threadPool = "thread_pool"
    /// The calling thread does the transfer itself (memory and tier backends, or when asked).
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
