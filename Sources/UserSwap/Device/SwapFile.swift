import CUserSwap
import Glibc
import Synchronization

/// Swap files on disk: making one (`mkswap`), opening one as a device (the checks of the kernel's
/// `swapon`), and describing one (`swapon --show`, `blkid`).
///
/// Every operation either succeeds or leaves the disk as it found it, and every failure is a
/// `SwapError` whose message says what to do.
public enum SwapFile {
    /// Opens the swap file at `path` as a device: it must be a regular file of the effective
    /// user that nobody else may read or write (see `openExclusive`), whose header decodes (see
    /// `SwapHeader.decode`), not in use by the kernel (`/proc/swaps`) and not held by another
    /// `FileBackend` (flock). With `discard`, freed clusters are punched out of it.
    public static func open(
        path: String, discard: Bool = false
    ) throws(SwapError) -> (header: SwapHeader, backend: FileBackend) {
        let descriptor = try openExclusive(path: path)
        let header = try readHeader(descriptor, path: path)
        let direct = try openDirect(descriptor, path: path)
        return (header, FileBackend(adopting: descriptor, direct: direct, path: path, header: header, discard: discard))
    }

    // MARK: Opening

    /// Opens `path` read-write and takes its exclusive flock, after checking that it is a private
    /// regular file (`checkPrivate`) the kernel is not swapping to. The lock lives as long as the
    /// returned descriptor.
    ///
    /// Swap holds whatever a program had in memory, so the kernel's rules for its own swap
    /// files apply in spirit: `O_NOFOLLOW` refuses a symbolic link at `path` (one planted by
    /// another user in a shared folder would send our pages into a file of their choosing), and
    /// every check is made on the open descriptor (fstat), not on the path, so the file checked
    /// is the file used.
    static func openExclusive(path: String) throws(SwapError) -> FileDescriptor {
        let descriptor: FileDescriptor
        do throws(Errno) {
            // O_NOCTTY: a terminal named by mistake must not become our controlling terminal
            // before fstat refuses it.
            descriptor = FileDescriptor(adopting: try Syscalls.open(path, flags: O_RDWR | O_NOFOLLOW | O_NOCTTY))
        } catch {
            throw openFailure(error, path: path)
        }
        let status: stat
        do throws(Errno) { status = try Syscalls.fstat(descriptor.rawValue) } catch {
            throw SwapError.file(path, error, doing: "examine")
        }
        try checkPrivate(status, path: path)
        if isKernelSwap(status) { throw kernelInUse(path) }
        do throws(Errno) {
            try Syscalls.flockExclusiveNonBlocking(descriptor.rawValue)
        } catch {
            throw error == .wouldBlock ? lockedElsewhere(path) : SwapError.file(path, error, doing: "lock")
        }
        return descriptor
    }

    /// Refuses the file `status` describes unless it is a regular file owned by the effective
    /// user with no permission bit for its group or others: anyone else who can read it reads
    /// our memory, and anyone who can write it chooses what we read back.
    static func checkPrivate(_ status: stat, path: String) throws(SwapError) {
        guard status.st_mode & S_IFMT == S_IFREG else {
            if status.st_mode & S_IFMT == S_IFDIR {
                throw SwapError(
                    .isDirectory,
                    "\(path) is a directory; give the path of a swap file inside it",
                    remedy: .makeSwapFile(path: (path.hasSuffix("/") ? path : path + "/") + "swapfile"))
            }
            throw SwapError(
                .invalidArgument, "\(path) is not a regular file; UserSwap swaps to regular files", remedy: .makeSwapFile(path: "FILE"))
        }
        let me = Syscalls.effectiveUserID
        guard status.st_uid == me else {
            throw SwapError(
                .notOwner,
                "\(path) belongs to user \(status.st_uid), not to you (user \(me)); swap holds your memory, so it must be your own file (if this one is yours: `chown \(me) \(path)` as root)",
                remedy: .makeSwapFile(path: "FILE"))
        }
        let mode = status.st_mode & 0o7777
        guard mode & 0o077 == 0 else {
            throw SwapError(
                .unsafePermissions,
                "\(path) has mode \(octal(mode)): its group or others can read or write it, and swap holds your memory in clear; run `chmod 600 \(path)`"
            )
        }
    }

    /// The second descriptor of an open swap file, with `O_DIRECT`: reopened from the first
    /// through `/proc/self/fd/N`, so it names the same inode whatever the path names by now (a
    /// second `open` of the path could meet a file renamed over it in between), and checked to
    /// be the same device and inode all the same. Nil where the file system refuses `O_DIRECT`
    /// (tmpfs) or there is no procfs: transfers are buffered then.
    static func openDirect(_ descriptor: borrowing FileDescriptor, path: String) throws(SwapError) -> FileDescriptor? {
        #if DEBUG
        SwapFile.beforeDirectOpen.withLock { $0 }?(path)
        #endif
        guard let fd = try? Syscalls.reopen(descriptor.rawValue, flags: O_RDWR | cus_O_DIRECT()) else { return nil }
        let direct = FileDescriptor(adopting: fd)
        try checkSameFile(descriptor, direct, path: path)
        return direct
    }

    /// Throws `.fileChanged` unless `a` and `b` are open on the same file (device and inode).
    static func checkSameFile(_ a: borrowing FileDescriptor, _ b: borrowing FileDescriptor, path: String) throws(SwapError) {
        let first: stat, second: stat
        do throws(Errno) {
            first = try Syscalls.fstat(a.rawValue)
            second = try Syscalls.fstat(b.rawValue)
        } catch {
            throw SwapError.file(path, error, doing: "examine")
        }
        guard first.st_dev == second.st_dev, first.st_ino == second.st_ino else {
            throw SwapError(
                .fileChanged,
                "\(path) changed while it was being opened (its two descriptors name different files): someone may be replacing it; make sure only you can write to its folder, then try again"
            )
        }
    }

    #if DEBUG
    /// Runs between the two opens of a swap file, with its path, so a test can rename another
    /// file over the path there.
    static let beforeDirectOpen = Mutex<(@Sendable (String) -> Void)?>(nil, rank: .testHook)
    #endif

    /// `mode` as four octal digits (`0644`).
    static func octal(_ mode: mode_t) -> String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    /// Reads and decodes the header of the open file at `path`.
    static func readHeader(_ descriptor: borrowing FileDescriptor, path: String) throws(SwapError) -> SwapHeader {
        let size: Int64
        do throws(Errno) { size = Int64(try Syscalls.fstat(descriptor.rawValue).st_size) } catch {
            throw SwapError.file(path, error, doing: "examine")
        }
        // Up to 64 KiB, so that a header made for larger pages is recognised and named.
        let probe = Int(min(size, 65536))
        var start = [UInt8](repeating: 0, count: probe)
        // Array's closures rethrow untyped errors; Result carries the typed one through.
        let read = start.withUnsafeMutableBytes { buffer in
            Result { () throws(Errno) in try descriptor.readAll(into: buffer, at: 0) }
        }
        if case .failure(let error) = read { throw SwapError.file(path, error, doing: "read the header of") }
        return try start.withUnsafeBytes { buffer in
            Result { () throws(SwapError) in try SwapHeader.decode(buffer, path: path, fileBytes: size) }
        }.get()
    }

    // MARK: The kernel's swap files

    /// Whether the kernel is swapping to the file `status` describes: some path in /proc/swaps
    /// names the same device and inode. (Paths are compared by identity, not by text: the same
    /// file has many names, and /proc/swaps shows the one given to `swapon`.)
    static func isKernelSwap(_ status: stat) -> Bool {
        for name in kernelSwapPaths() {
            guard let other = try? Syscalls.stat(path: name) else { continue }
            if other.st_dev == status.st_dev && other.st_ino == status.st_ino { return true }
        }
        return false
    }

    /// The paths in /proc/swaps (empty without procfs). The kernel escapes space, tab, newline
    /// and backslash in them as `\ooo` octal (`seq_file_path`).
    static func kernelSwapPaths() -> [String] {
        guard let fd = try? Syscalls.open("/proc/swaps", flags: O_RDONLY) else { return [] }
        let descriptor = FileDescriptor(adopting: fd)
        let raw = descriptor.rawValue
        var text: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n =
                (try? chunk.withUnsafeMutableBytes { buffer in
                    try Syscalls.pread(raw, buffer, offset: Int64(text.count))
                }) ?? 0
            if n <= 0 { break }
            text += chunk[..<n]
        }
        _ = consume descriptor
        return text.split(separator: UInt8(ascii: "\n")).dropFirst().compactMap { line in
            guard let field = line.split(whereSeparator: { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }).first
            else { return nil }
            return unescapeOctal(Array(field))
        }
    }

    private static func unescapeOctal(_ field: [UInt8]) -> String {
        var bytes: [UInt8] = []
        var i = 0
        while i < field.count {
            if field[i] == UInt8(ascii: "\\"), i + 3 < field.count,
                let value = UInt8(String(decoding: field[(i + 1)...(i + 3)], as: UTF8.self), radix: 8)
            {
                bytes.append(value)
                i += 4
            } else {
                bytes.append(field[i])
                i += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: Errors

    static func kernelInUse(_ path: String) -> SwapError {
        SwapError(.fileInUse, "\(path) is in use as swap by the kernel (it is listed in /proc/swaps); run `swapoff \(path)` first")
    }

    static func lockedElsewhere(_ path: String) -> SwapError {
        SwapError(
            .fileInUse, "\(path) is in use by another UserSwap device (it is locked); stop that process or close the device first",
            errno: .wouldBlock)
    }

    private static func openFailure(_ errno: Errno, path: String) -> SwapError {
        if errno.rawValue == ETXTBSY { return kernelInUse(path) }
        if errno == .isDirectory {
            return SwapError(
                .isDirectory,
                "\(path) is a directory; give the path of a swap file inside it",
                remedy: .makeSwapFile(path: (path.hasSuffix("/") ? path : path + "/") + "swapfile"), errno: errno)
        }
        if errno.rawValue == ELOOP {
            // O_NOFOLLOW met a symbolic link as the last component.
            return SwapError(
                .symbolicLink,
                "\(path) is a symbolic link; UserSwap does not follow links to swap files (a link in a shared folder can point anywhere): give the file's own path (`readlink -f \(path)`), or remove the link",
                remedy: .makeSwapFile(path: path), errno: errno)
        }
        return SwapError.file(path, errno, doing: "open")
    }
}
