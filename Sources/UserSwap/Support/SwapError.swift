import Glibc

/// The engine's error: a stable code for programs, the system error underneath if there was one,
/// and a message that tells the user what to do.
public struct SwapError: Error, Sendable, CustomStringConvertible, Equatable {
    /// Stable codes; their raw values appear in `--json` output and never change meaning.
    public enum Code: String, Sendable, CaseIterable {
        /// The file has no Linux swap signature (`SWAPSPACE2`): format it first.
        case notASwapFile = "not-a-swap-file"
        /// The swap header was written for another page size.
        case wrongPageSize = "wrong-page-size"
        /// The swap header's version is not 1.
        case unsupportedVersion = "unsupported-version"
        /// A swap device smaller than a header and one cluster (2 MiB) of pages.
        case tooSmall = "too-small"
        /// The swap header lists a bad page outside the file.
        case badPageListOutOfRange = "bad-page-list-out-of-range"
        /// Another user of the swap file holds it (UserSwap's lock, or the kernel's `swapon`).
        case fileInUse = "file-in-use"
        /// Creating a file that exists already.
        case fileExists = "file-exists"
        /// The swap path is a symbolic link: swap files are opened without following one.
        case symbolicLink = "symbolic-link"
        /// The swap file belongs to another user.
        case notOwner = "not-owner"
        /// The swap file's mode lets its group or others read or write it.
        case unsafePermissions = "unsafe-permissions"
        /// The file changed under us while it was being opened (two descriptors, two files).
        case fileChanged = "file-changed"
        /// The system refused access (a file's permissions, a privilege the process lacks).
        case permissionDenied = "permission-denied"
        /// A path names a directory where a file was needed.
        case isDirectory = "is-directory"
        /// A path, or the folder it should be made in, does not exist.
        case noSuchFile = "no-such-file"
        /// The file system holding a swap file is full.
        case diskFull = "disk-full"
        /// A value given to a call is not valid (a negative count, a size that is not a power of
        /// two, a malformed URL).
        case invalidArgument = "invalid-argument"
        /// A device could not read or write a page, or a page failed its authentication: the
        /// page is not lost and no wrong data was returned.
        case ioError = "io-error"
        /// No device has a free run of slots of the requested order.
        case swapFull = "swap-full"
        /// A slot already has the most mappings its count field can hold.
        case countOverflow = "count-overflow"
        /// Nothing can be freed for a new page: every frame is pinned, or a group is at its
        /// memory limit with nothing it may swap out. Also: a region's page table cannot be
        /// allocated, or a space has made all the regions it can.
        case outOfMemory = "out-of-memory"
        /// The swap entry was freed (or never allocated): `swap_cache_add_folio`'s -ENOENT.
        case noEntry = "no-entry"
        /// The device was removed (swapoff), or its remote store does not answer.
        case deviceGone = "device-gone"
        /// An index or range outside a region or an array.
        case outOfRange = "out-of-range"
        /// The kernel lacks something a feature needs (userfaultfd, a feature of it).
        case unsupported = "unsupported"
        /// More pages pinned through the `async` API at once than the space allows
        /// (`SwapSpace.Configuration.asyncPinLimit`): release pins, or raise the limit.
        case pinLimit = "pin-limit"
        /// The task was cancelled while it waited for a page (`async` access); nothing was
        /// pinned or changed.
        case cancelled = "cancelled"
    }

    /// What went wrong, for programs to switch on.
    public let code: Code
    /// The system error underneath, when a system call failed.
    public let errno: Errno?
    /// What happened and what to do, for people (the remedy in a Swift program's terms:
    /// `message(for:)` gives it in the command line's or the C library's).
    public let message: String
    /// What to do about it, when the message offers a remedy (`SwapError+Remedy.swift`).
    public internal(set) var remedy: Remedy?
    /// What happened, without the remedy (set with `remedy`).
    var problem: String?

    /// An error of `code` with `message`, and the system error underneath if any.
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

    /// The same error with `context` before what happened; the remedy is kept.
    public func adding(context: String) -> SwapError {
        guard let remedy, let problem else { return SwapError(code, context + message, errno: errno) }
        return SwapError(code, context + problem, remedy: remedy, errno: errno)
    }
}

extension SwapError {
    /// Maps a system error met while working on `path` to the engine error a user can act on.
    static func file(_ path: String, _ errno: Errno, doing what: String) -> SwapError {
        switch errno {
        case .permissionDenied, .notPermitted:
            SwapError(
                .permissionDenied, "cannot \(what) \(path): permission denied; check the file's owner and mode, or run as its owner",
                errno: errno)
        case .isDirectory:
            SwapError(.isDirectory, "\(path) is a directory; give the path of a swap file inside it", errno: errno)
        case .noSuchFile:
            SwapError(.noSuchFile, "\(path) does not exist", remedy: .makeSwapFile(path: path), errno: errno)
        case .noSpace, Errno(rawValue: EDQUOT), Errno(rawValue: EFBIG):
            SwapError(.diskFull, "cannot \(what) \(path): the disk is full", remedy: .smallerSwapFile, errno: errno)
        case .wouldBlock, .busy:
            SwapError(.fileInUse, "\(path) is in use by another process; stop it (or swapoff the file) first", errno: errno)
        case .fileExists:
            SwapError(.fileExists, "\(path) already exists", remedy: .replaceExisting, errno: errno)
        default:
            SwapError(.ioError, "cannot \(what) \(path): \(errno.message)", errno: errno)
        }
    }
}
