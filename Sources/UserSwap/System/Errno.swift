import Glibc

/// A system call's error number, with a readable name. Thrown by `Syscalls`; the engine wraps it
/// in a `SwapError` that tells the user what to do.
public struct Errno: Error, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32

    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// The calling thread's current `errno`.
    static var current: Errno { Errno(rawValue: errno) }

    public static let permissionDenied = Errno(rawValue: EACCES)
    public static let notPermitted = Errno(rawValue: EPERM)
    public static let noSuchFile = Errno(rawValue: ENOENT)
    public static let fileExists = Errno(rawValue: EEXIST)
    public static let isDirectory = Errno(rawValue: EISDIR)
    public static let noSpace = Errno(rawValue: ENOSPC)
    public static let ioError = Errno(rawValue: EIO)
    public static let interrupted = Errno(rawValue: EINTR)
    public static let wouldBlock = Errno(rawValue: EAGAIN)
    public static let timedOut = Errno(rawValue: ETIMEDOUT)
    public static let badFileDescriptor = Errno(rawValue: EBADF)
    public static let badAddress = Errno(rawValue: EFAULT)
    public static let invalidArgument = Errno(rawValue: EINVAL)
    public static let notSupported = Errno(rawValue: EOPNOTSUPP)
    public static let busy = Errno(rawValue: EBUSY)
    public static let outOfMemory = Errno(rawValue: ENOMEM)

    /// The symbolic name (`ENOSPC`) where known.
    public var name: String {
        switch rawValue {
        case EACCES: "EACCES"
        case EPERM: "EPERM"
        case ENOENT: "ENOENT"
        case EEXIST: "EEXIST"
        case EISDIR: "EISDIR"
        case ENOSPC: "ENOSPC"
        case EIO: "EIO"
        case EINTR: "EINTR"
        case EAGAIN: "EAGAIN"
        case ETIMEDOUT: "ETIMEDOUT"
        case EBADF: "EBADF"
        case EFAULT: "EFAULT"
        case EINVAL: "EINVAL"
        case EOPNOTSUPP: "EOPNOTSUPP"
        case EBUSY: "EBUSY"
        case ENOMEM: "ENOMEM"
        case EROFS: "EROFS"
        case EFBIG: "EFBIG"
        case EDQUOT: "EDQUOT"
        case ENODEV: "ENODEV"
        case ECONNREFUSED: "ECONNREFUSED"
        case ECONNRESET: "ECONNRESET"
        case EPIPE: "EPIPE"
        case ETXTBSY: "ETXTBSY"
        default: "errno \(rawValue)"
        }
    }

    /// The C library's message (`No space left on device`).
    public var message: String { String(cString: strerror(rawValue)) }

    public var description: String { "\(name) (\(message))" }

    /// An errno that can only mean a bug in UserSwap (a closed descriptor, a bad pointer): trap
    /// with its text rather than throw, as swift-nio's `isUnacceptableErrno` does.
    var isUnacceptable: Bool { rawValue == EBADF || rawValue == EFAULT }
}
