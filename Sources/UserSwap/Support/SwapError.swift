/// The engine's error: a stable code for programs, the system error underneath if there was one,
/// and a message that tells the user what to do.
public struct SwapError: Error, Sendable, CustomStringConvertible, Equatable {
    /// Stable codes; their raw values appear in `--json` output and never change meaning.
    public enum Code: String, Sendable, CaseIterable {
        case notASwapFile = "not-a-swap-file"
        case wrongPageSize = "wrong-page-size"
        case unsupportedVersion = "unsupported-version"
        case tooSmall = "too-small"
        case badPageListOutOfRange = "bad-page-list-out-of-range"
        case fileInUse = "file-in-use"
        case fileExists = "file-exists"
        /// The swap path is a symbolic link: swap files are opened without following one.
        case symbolicLink = "symbolic-link"
        /// The swap file belongs to another user.
        case notOwner = "not-owner"
        /// The swap file's mode lets its group or others read or write it.
        case unsafePermissions = "unsafe-permissions"
        /// The file changed under us while it was being opened (two descriptors, two files).
        case fileChanged = "file-changed"
        case permissionDenied = "permission-denied"
        case isDirectory = "is-directory"
        case noSuchFile = "no-such-file"
        case diskFull = "disk-full"
        case invalidArgument = "invalid-argument"
        case ioError = "io-error"
        /// No device has a free run of slots of the requested order.
        case swapFull = "swap-full"
        /// A slot already has the most mappings its count field can hold.
        case countOverflow = "count-overflow"
        case outOfMemory = "out-of-memory"
        /// The swap entry was freed (or never allocated): the seed's -ENOENT.
        case noEntry = "no-entry"
        case deviceGone = "device-gone"
        case outOfRange = "out-of-range"
        /// The kernel lacks something a feature needs (userfaultfd, a feature of it).
        case unsupported = "unsupported"
    }

    public let code: Code
    public let errno: Errno?
    public let message: String

    public init(_ code: Code, _ message: String, errno: Errno? = nil) {
        self.code = code
        self.message = message
        self.errno = errno
    }

    public var description: String {
        if let errno { return "\(message) [\(errno.name)]" }
        return message
    }

    public static func == (a: SwapError, b: SwapError) -> Bool { a.code == b.code && a.errno == b.errno }
}

extension SwapError {
    /// Maps a system error met while working on `path` to the engine error a user can act on.
    static func file(_ path: String, _ errno: Errno, doing what: String) -> SwapError {
        switch errno {
        case .permissionDenied, .notPermitted:
            SwapError(.permissionDenied, "cannot \(what) \(path): permission denied; check the file's owner and mode, or run as its owner", errno: errno)
        case .isDirectory:
            SwapError(.isDirectory, "\(path) is a directory; give the path of a swap file inside it", errno: errno)
        case .noSuchFile:
            SwapError(.noSuchFile, "\(path) does not exist; create it with `userswap format \(path) --size 1G`", errno: errno)
        case .noSpace, Errno(rawValue: 122 /* EDQUOT */), Errno(rawValue: 27 /* EFBIG */):
            SwapError(.diskFull, "cannot \(what) \(path): the disk is full; free space or choose a smaller --size", errno: errno)
        case .wouldBlock, .busy:
            SwapError(.fileInUse, "\(path) is in use by another process; stop it (or swapoff the file) first", errno: errno)
        case .fileExists:
            SwapError(.fileExists, "\(path) already exists; pass --force to overwrite it", errno: errno)
        default:
            SwapError(.ioError, "cannot \(what) \(path): \(errno.message)", errno: errno)
        }
    }
}
