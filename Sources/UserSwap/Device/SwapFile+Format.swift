import Glibc
import Synchronization

/// Making a swap file (`mkswap`), without ever replacing a file by surprise or leaving one
/// behind.
extension SwapFile {
    /// How `format` builds the new file before it takes its name.
    enum Staging: Sendable {
        /// Unnamed (O_TMPFILE in the target's folder) where the file system allows it, named
        /// otherwise.
        case automatic
        /// Always under a hidden temporary name beside the target (what file systems without
        /// O_TMPFILE get; tests choose it to check that path on any file system).
        case named
    }

    /// Creates a swap file of `bytes` (rounded down to whole 4 KiB pages) at `path`, formatted
    /// with a v1 header the kernel's `swapon` accepts, and returns the header.
    ///
    /// The file is built in `path`'s folder, its blocks allocated up front with fallocate(2)
    /// (`swapon` refuses files with holes, and a swap device must not meet a full disk in the
    /// middle of reclaim), written, synced and made mode 0600 (swap holds other processes'
    /// memory) before it takes its name. It is made unnamed (`O_TMPFILE`) where the file system
    /// allows it, so nothing is left on disk if the process dies, even by SIGKILL; elsewhere it
    /// has a hidden temporary name (`.NAME.userswap-RANDOM`) that any failure removes, and
    /// that `removeStagedFiles()` removes from a signal watcher (the CLI's SIGINT, SIGTERM and
    /// SIGHUP).
    ///
    /// An existing file, or anything else at `path` (a symbolic link included), is replaced only
    /// with `force`, and never while the kernel swaps to it or another UserSwap process holds it
    /// open. Without `force` the new file takes its name in one step that fails if the name is
    /// taken by then (`linkat` of the unnamed file, or `renameat2(RENAME_NOREPLACE)`), so a file
    /// created at `path` after the check survives; with `force` it replaces the old one in one
    /// step (`rename`), so `path` always names a whole file.
    ///
    /// With `writeOut`, every block is also written once (zeros) before the header. A block
    /// `fallocate` gave is *unwritten* to ext4 and xfs: the first write to it converts the
    /// extent, under the inode's exclusive lock, so first writes of a fresh file go one at a
    /// time; an overwrite of a written block takes the lock shared and runs at twice the
    /// speed on this machine's disk (`bench device-limits`: `sequential_overwrite_mib_per_s`).
    /// The price is one write of the whole file now. (The kernel's swap writes the blocks
    /// directly, past the file system, and never pays the conversion.)
    @discardableResult
    public static func format(
        path: String, bytes: Int64, label: String = "", force: Bool = false, writeOut: Bool = false
    ) throws(SwapError) -> SwapHeader {
        try format(path: path, bytes: bytes, label: label, force: force, writeOut: writeOut, staging: .automatic)
    }

    static func format(
        path: String, bytes: Int64, label: String, force: Bool, writeOut: Bool, staging: Staging
    ) throws(SwapError) -> SwapHeader {
        let (header, fileBytes) = try plannedHeader(path: path, bytes: bytes, label: label)

        // Holds the flock of the file being replaced until the new one is in its place, so no
        // UserSwap process can open the old file between our check and the rename.
        let replaced = try checkReplaceable(path: path, force: force)

        let (directory, name) = split(path)
        let staged = try StagedSwapFile(directory: directory, name: name, path: path, bytes: fileBytes, staging: staging)
        do throws(SwapError) {
            try fill(staged.descriptor, header: header, bytes: fileBytes, writeOut: writeOut, path: path, directory: directory)
            #if DEBUG
            beforeInstall.withLock { $0 }?(path)
            #endif
            try staged.install(at: path, replacing: force)
        } catch {
            staged.discard()
            throw error
        }
        // The old file is off the path now; its lock can go.
        _ = consume replaced
        syncDirectory(directory)
        return header
    }

    /// The header of a swap file of `bytes` labelled `label`, and the file's size: whole pages,
    /// at least one cluster after the header, at most what a header describes.
    static func plannedHeader(path: String, bytes: Int64, label: String) throws(SwapError) -> (SwapHeader, Int64) {
        let pageCount = max(0, bytes) / Int64(SwapPage.size)
        let minimum = Int64(SwapHeader.minimumPageCount * SwapPage.size)
        guard pageCount >= Int64(SwapHeader.minimumPageCount) else {
            throw SwapError(
                .tooSmall,
                "swap file \(path) would be \(SwapHeader.describe(bytes: max(0, bytes))); it needs at least one cluster (2 MiB) after the header",
                remedy: .largerSwapFile(atLeast: minimum))
        }
        guard pageCount <= Int64(SwapHeader.maxPageCount) else {
            throw SwapError(
                .invalidArgument,
                "swap file \(path) would be \(SwapHeader.describe(bytes: bytes)); a swap header can describe at most 16 TiB",
                remedy: .smallerSwapFile)
        }
        try SwapHeader.validate(pageCount: Int(pageCount), label: label)
        return (SwapHeader(pageCount: Int(pageCount), label: label), pageCount * Int64(SwapPage.size))
    }

    #if DEBUG
    /// Runs after the new file is complete and before it takes its name, with the target path,
    /// so a test can create a file there after the check.
    static let beforeInstall = Mutex<(@Sendable (String) -> Void)?>(nil, rank: .testHook)
    #endif

    // MARK: Formatting steps

    /// What is at `path` now may be replaced: nothing, or (with `force`) a regular file that
    /// neither the kernel nor another UserSwap process is using, or a symbolic link (the link
    /// is replaced, never its target). Returns the replaced file opened and locked, or nil.
    /// Looks at the path without following a link (lstat).
    private static func checkReplaceable(path: String, force: Bool) throws(SwapError) -> FileDescriptor? {
        let status: stat
        do throws(Errno) {
            status = try Syscalls.lstat(path: path)
        } catch {
            if error == .noSuchFile { return nil }
            throw SwapError.file(path, error, doing: "examine")
        }
        switch status.st_mode & S_IFMT {
        case S_IFDIR:
            throw SwapError(
                .isDirectory,
                "\(path) is a directory; give the path of a swap file inside it, such as \(path.hasSuffix("/") ? path : path + "/")swapfile"
            )
        case S_IFLNK:
            guard force else {
                throw SwapError(
                    .fileExists,
                    "\(path) already exists as a symbolic link (replacing it replaces the link itself, never what it points to)",
                    remedy: .replaceExisting)
            }
            return nil
        case S_IFREG:
            break
        default:
            throw SwapError(
                .invalidArgument, "\(path) exists and is not a regular file; UserSwap formats regular files only: give another path")
        }
        if isKernelSwap(status) { throw kernelInUse(path) }
        guard force else {
            throw SwapError(.fileExists, "\(path) already exists", remedy: .replaceExisting)
        }
        // A file we cannot even read cannot be locked by us either; nothing to protect then.
        guard let fd = try? Syscalls.open(path, flags: O_RDONLY | O_NOFOLLOW | O_NOCTTY) else { return nil }
        let descriptor = FileDescriptor(adopting: fd)
        do throws(Errno) {
            try Syscalls.flockExclusiveNonBlocking(descriptor.rawValue)
        } catch {
            if error == .wouldBlock { throw lockedElsewhere(path) }
        }
        return descriptor
    }

    /// Allocates, writes and syncs the new file's `bytes`, header first.
    static func fill(
        _ descriptor: borrowing FileDescriptor, header: SwapHeader, bytes: Int64, writeOut: Bool, path: String, directory: String
    ) throws(SwapError) {
        do throws(Errno) {
            // The umask may have taken bits off; swap is private to its owner either way.
            try Syscalls.fchmod(descriptor.rawValue, 0o600)
            do {
                try Syscalls.fallocate(descriptor.rawValue, offset: 0, length: bytes)
                // Allocated first, so that a disk too small fails at once, not after a long write.
                if writeOut { try writeZeros(descriptor, bytes: bytes) }
            } catch  where error == .notSupported {
                // A file system without fallocate (some FUSE, NFSv3): write the zeros ourselves.
                try writeZeros(descriptor, bytes: bytes)
            }
            try header.encoded().withUnsafeBytes { page in
                Result { () throws(Errno) in try descriptor.writeAll(page, at: 0) }
            }.get()
            try Syscalls.fsync(descriptor.rawValue)
            // The zeros went through the page cache; the device reads and writes the file with
            // O_DIRECT, which would have to invalidate every cached page it touches. A hint:
            // failure leaves only memory the kernel can reclaim anyway.
            if writeOut { _ = posix_fadvise(descriptor.rawValue, 0, off_t(bytes), POSIX_FADV_DONTNEED) }
        } catch {
            throw directoryFailure(error, directory: directory, path: path, bytes: bytes)
        }
    }

    private static func writeZeros(_ descriptor: borrowing FileDescriptor, bytes: Int64) throws(Errno) {
        let zeros = [UInt8](repeating: 0, count: 1 << 20)
        var offset: Int64 = 0
        while offset < bytes {
            let count = Int(min(Int64(zeros.count), bytes - offset))
            try zeros.withUnsafeBytes { buffer in
                Result { () throws(Errno) in
                    try descriptor.writeAll(UnsafeRawBufferPointer(rebasing: buffer[..<count]), at: offset)
                }
            }.get()
            offset += Int64(count)
        }
    }

    /// Makes the new name durable. Failure is not reported: the new file is complete either
    /// way, and at worst a crash brings back the old directory entry.
    private static func syncDirectory(_ directory: String) {
        guard let fd = try? Syscalls.open(directory, flags: O_RDONLY | O_DIRECTORY) else { return }
        let descriptor = FileDescriptor(adopting: fd)
        try? Syscalls.fsync(descriptor.rawValue)
    }

    /// (directory, last component) of `path`; "." for a bare name.
    static func split(_ path: String) -> (directory: String, name: String) {
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return (".", String(trimmed)) }
        let directory = slash == trimmed.startIndex ? "/" : String(trimmed[..<slash])
        return (directory, String(trimmed[trimmed.index(after: slash)...]))
    }

    static func randomSuffix() -> String {
        String(UInt64.random(in: 0...UInt64.max), radix: 16)
    }

    /// The error for a failure while making the new file in `directory`.
    static func directoryFailure(_ errno: Errno, directory: String, path: String, bytes: Int64) -> SwapError {
        switch errno.rawValue {
        case ENOSPC, EDQUOT, EFBIG:
            return SwapError(
                .diskFull,
                "cannot format \(path): \(SwapHeader.describe(bytes: bytes)) does not fit in the free space of its file system; free space or make the swap file smaller",
                errno: errno)
        case EACCES, EPERM, EROFS:
            return SwapError(
                .permissionDenied,
                "cannot create \(path): directory \(directory) is not writable (\(errno.message)); choose another directory or run as its owner",
                errno: errno)
        case ENOENT, ENOTDIR:
            // The folder may exist and still refuse new files (procfs, sysfs answer ENOENT).
            if let st = try? Syscalls.stat(path: directory) {
                if st.st_mode & S_IFMT != S_IFDIR {
                    return SwapError(.noSuchFile, "cannot create \(path): \(directory) is not a folder", errno: errno)
                }
                return SwapError(
                    .noSuchFile,
                    "cannot create \(path): the file system of \(directory) does not take new files (\(errno.message)); choose a folder on a disk",
                    errno: errno)
            }
            return SwapError(.noSuchFile, "cannot create \(path): directory \(directory) does not exist; create it first", errno: errno)
        default:
            return SwapError(.ioError, "cannot format \(path): \(errno.message)", errno: errno)
        }
    }
}
