import Glibc

/// A system call's error number, with a readable name. Thrown by `Syscalls`; the engine wraps it
/// in a `SwapError` that tells the user what to do.
public struct Errno: Error, Hashable, Sendable, CustomStringConvertible {
    /// The number, as the C library's `errno` holds it (`ENOSPC`, …).
    public let rawValue: Int32

    /// The error `rawValue` names.
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// The calling thread's current `errno`.
    static var current: Errno { Errno(rawValue: errno) }

    /// `EACCES`.
    public static let permissionDenied = Errno(rawValue: EACCES)
    /// `EPERM`.
    public static let notPermitted = Errno(rawValue: EPERM)
    /// `ENOENT`.
    public static let noSuchFile = Errno(rawValue: ENOENT)
    /// `EEXIST`.
    public static let fileExists = Errno(rawValue: EEXIST)
    /// `EISDIR`.
    public static let isDirectory = Errno(rawValue: EISDIR)
    /// `ENOSPC`.
    public static let noSpace = Errno(rawValue: ENOSPC)
    /// `EIO`.
    public static let ioError = Errno(rawValue: EIO)
    /// `EINTR`.
    public static let interrupted = Errno(rawValue: EINTR)
    /// `EAGAIN`.
    public static let wouldBlock = Errno(rawValue: EAGAIN)
    /// `ETIMEDOUT`.
    public static let timedOut = Errno(rawValue: ETIMEDOUT)
    /// `EBADF`.
    public static let badFileDescriptor = Errno(rawValue: EBADF)
    /// `EFAULT`.
    public static let badAddress = Errno(rawValue: EFAULT)
    /// `EINVAL`.
    public static let invalidArgument = Errno(rawValue: EINVAL)
    /// `EOPNOTSUPP`.
    public static let notSupported = Errno(rawValue: EOPNOTSUPP)
    /// `EBUSY`.
    public static let busy = Errno(rawValue: EBUSY)
    /// `ENOMEM`.
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
