import CUserSwap
import Glibc

/// Every libc call and syscall the engine makes goes through here (swift-system's
/// `Internals/Syscalls.swift` pattern): failures become `Errno`, EINTR retry is explicit, and an
/// errno that can only mean our own bug traps with its text.
enum Syscalls {
    /// Runs `body` until it does not fail with EINTR (when `retryOnInterrupt`), mapping -1/errno
    /// to a thrown `Errno`.
    @inline(__always)
    static func valueOrErrno<T: FixedWidthInteger>(
        retryOnInterrupt: Bool = true, _ body: () -> T
    ) throws(Errno) -> T {
        while true {
            let r = body()
            if r >= 0 { return r }
            let e = Errno.current
            if e == .interrupted && retryOnInterrupt { continue }
            try check(e)
        }
    }

    /// For shim calls that return -errno.
    @inline(__always)
    static func negatedErrno<T: FixedWidthInteger & SignedInteger>(
        retryOnInterrupt: Bool = true, _ body: () -> T
    ) throws(Errno) -> T {
        while true {
            let r = body()
            if r >= 0 { return r }
            let e = Errno(rawValue: Int32(truncatingIfNeeded: -r))
            if e == .interrupted && retryOnInterrupt { continue }
            try check(e)
        }
    }

    @inline(__always)
    static func check(_ e: Errno) throws(Errno) -> Never {
        if e.isUnacceptable { trap("unacceptable errno \(e): a UserSwap bug") }
        throw e
    }

    static func open(_ path: String, flags: Int32, mode: mode_t = 0) throws(Errno) -> Int32 {
        try negatedErrno { cus_open(path, flags | O_CLOEXEC, UInt32(mode)) }
    }

    /// `close` never retries: on Linux the descriptor is gone even when it reports EINTR.
    static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }

    static func pread(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer, offset: Int64) throws(Errno) -> Int {
        try valueOrErrno { Glibc.pread(fd, buffer.baseAddress, buffer.count, off_t(offset)) }
    }

    static func pwrite(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, offset: Int64) throws(Errno) -> Int {
        try valueOrErrno { Glibc.pwrite(fd, buffer.baseAddress, buffer.count, off_t(offset)) }
    }

    static func preadv(_ fd: Int32, _ iov: UnsafePointer<iovec>, count: Int, offset: Int64) throws(Errno) -> Int {
        try valueOrErrno { Glibc.preadv(fd, iov, Int32(count), off_t(offset)) }
    }

    static func pwritev(_ fd: Int32, _ iov: UnsafePointer<iovec>, count: Int, offset: Int64) throws(Errno) -> Int {
        try valueOrErrno { Glibc.pwritev(fd, iov, Int32(count), off_t(offset)) }
    }

    static func fstat(_ fd: Int32) throws(Errno) -> Glibc.stat {
        var st = Glibc.stat()
        _ = try valueOrErrno { Glibc.fstat(fd, &st) }
        return st
    }

    /// lstat(2): what is at `path` (a symlink is not followed).
    static func lstat(path: String) throws(Errno) -> Glibc.stat {
        var st = Glibc.stat()
        _ = try valueOrErrno { Glibc.lstat(path, &st) }
        return st
    }

    /// stat(2): what `path` names, following symbolic links (how the kernel's /proc/swaps paths
    /// are compared with a file by device and inode).
    static func stat(path: String) throws(Errno) -> Glibc.stat {
        var st = Glibc.stat()
        _ = try valueOrErrno { Glibc.fstatat(AT_FDCWD, path, &st, 0) }
        return st
    }

    static func fchmod(_ fd: Int32, _ mode: mode_t) throws(Errno) {
        _ = try valueOrErrno { Glibc.fchmod(fd, mode) }
    }

    /// The most iovecs one preadv/pwritev accepts (1024 on Linux).
    static let iovMax: Int = max(16, Int(sysconf(Int32(_SC_IOV_MAX))))

    static func fsync(_ fd: Int32) throws(Errno) {
        _ = try valueOrErrno { Glibc.fsync(fd) }
    }

    static func ftruncate(_ fd: Int32, _ length: Int64) throws(Errno) {
        _ = try valueOrErrno { Glibc.ftruncate(fd, off_t(length)) }
    }

    static func fallocate(_ fd: Int32, offset: Int64, length: Int64) throws(Errno) {
        _ = try negatedErrno { cus_fallocate(fd, 0, offset, length) }
    }

    static func punchHole(_ fd: Int32, offset: Int64, length: Int64) throws(Errno) {
        _ = try negatedErrno { cus_punch_hole(fd, offset, length) }
    }

    static func flockExclusiveNonBlocking(_ fd: Int32) throws(Errno) {
        _ = try negatedErrno { cus_flock_exclusive_nonblocking(fd) }
    }

    static func rename(_ from: String, _ to: String) throws(Errno) {
        _ = try valueOrErrno { Glibc.rename(from, to) }
    }

    static func unlink(_ path: String) throws(Errno) {
        _ = try valueOrErrno { Glibc.unlink(path) }
    }

    /// renameat2(2) with RENAME_NOREPLACE: moves `from` to `to` only if nothing is at `to`, in
    /// one step (EEXIST otherwise; EINVAL where the file system cannot promise it).
    static func renameNoReplace(_ from: String, _ to: String) throws(Errno) {
        _ = try negatedErrno { cus_renameat2(AT_FDCWD, from, AT_FDCWD, to, UInt32(cus_RENAME_NOREPLACE())) }
    }

    /// link(2) without following a symbolic link at `from`: `to` is a new name of the same file,
    /// made only if nothing is at `to` (EEXIST otherwise).
    static func link(_ from: String, _ to: String) throws(Errno) {
        _ = try valueOrErrno { Glibc.linkat(AT_FDCWD, from, AT_FDCWD, to, 0) }
    }

    /// Gives the open file `fd` the name `to` (linkat(2) of `/proc/self/fd/N` with
    /// AT_SYMLINK_FOLLOW, which an unprivileged process may do, unlike AT_EMPTY_PATH): how a file
    /// made with O_TMPFILE gets its name. EEXIST if something is at `to`; never replaces.
    static func linkOpenFile(_ fd: Int32, to: String) throws(Errno) {
        _ = try valueOrErrno { Glibc.linkat(AT_FDCWD, procPath(fd), AT_FDCWD, to, AT_SYMLINK_FOLLOW) }
    }

    /// Opens the file `fd` is open on once more, with other flags (`open` of `/proc/self/fd/N`):
    /// the same inode, whatever its path names now. ENOENT without procfs.
    static func reopen(_ fd: Int32, flags: Int32) throws(Errno) -> Int32 {
        try open(procPath(fd), flags: flags)
    }

    /// `/proc/self/fd/N`: the magic link that names the open file `fd`.
    static func procPath(_ fd: Int32) -> String { "/proc/self/fd/\(fd)" }

    /// O_TMPFILE (with its O_DIRECTORY bits): an unnamed file in the directory given to `open`.
    static var temporaryFileFlag: Int32 { cus_O_TMPFILE() }

    /// mkdtemp(3): makes a new directory `prefix` + six random characters, mode 0700, and
    /// returns its path.
    static func makeTemporaryDirectory(prefix: String) throws(Errno) -> String {
        var template = Array((prefix + "XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { Glibc.mkdtemp($0.baseAddress!) != nil }
        guard made else { try check(.current) }
        return template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    static func rmdir(_ path: String) throws(Errno) {
        _ = try valueOrErrno { Glibc.rmdir(path) }
    }

    /// The effective user id: who owns the files this process makes.
    static var effectiveUserID: uid_t { Glibc.geteuid() }

    static func memfdCreate(_ name: String) throws(Errno) -> Int32 {
        try negatedErrno { cus_memfd_create(name) }
    }

    /// mmap; returns the mapping's base address.
    static func mmap(
        length: Int, protection: Int32, flags: Int32, fd: Int32 = -1, offset: Int64 = 0
    ) throws(Errno) -> UnsafeMutableRawPointer {
        let p = Glibc.mmap(nil, length, protection, flags, fd, off_t(offset))
        guard let p, p != MAP_FAILED else { try check(.current) }
        return p
    }

    static func munmap(_ base: UnsafeMutableRawPointer, length: Int) {
        let r = Glibc.munmap(base, length)
        require(r == 0, "munmap failed: \(Errno.current): a UserSwap bug")
    }

    static func madvise(_ base: UnsafeMutableRawPointer, length: Int, advice: Int32) throws(Errno) {
        _ = try valueOrErrno { Glibc.madvise(base, length, advice) }
    }

    /// `madvise` from a signal handler: allocates nothing, throws nothing, reads no errno.
    /// Returns 0 or -errno.
    static func madviseInSignal(_ base: UnsafeMutableRawPointer, length: Int, advice: Int32) -> Int32 {
        cus_madvise(base, length, advice)
    }

    /// process_madvise(2) on this process: `advice` over `count` ranges in one call (the kernel
    /// gathers their unmaps and flushes the TLB once, where `madvise` flushes per call). Returns
    /// the bytes advised (fewer than asked when a range failed), or the errno of a kernel that
    /// refuses the call: EBADF (no `PIDFD_SELF`), EINVAL (an advice it does not take from this
    /// call), ENOSYS, EPERM. Never traps: each of those means "use `madvise`".
    static func processMadviseSelf(_ ranges: UnsafePointer<iovec>, count: Int, advice: Int32) -> Result<Int, Errno> {
        while true {
            let r = cus_process_madvise_self(ranges, count, advice)
            if r >= 0 { return .success(r) }
            let e = Errno(rawValue: Int32(truncatingIfNeeded: -r))
            if e == .interrupted { continue }
            return .failure(e)
        }
    }

    /// The system page size; UserSwap supports 4 KiB pages (what its swap files are formatted for).
    static let pageSize: Int = Int(sysconf(Int32(_SC_PAGESIZE)))
}
