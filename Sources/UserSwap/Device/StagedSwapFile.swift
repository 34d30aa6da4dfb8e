import Glibc
import Synchronization

/// The new file of `SwapFile.format` until it takes its name: unnamed (`O_TMPFILE` in the
/// target's folder, so nothing of it is left on disk if the process dies, whatever kills it) or,
/// where the file system has no `O_TMPFILE` or there is no procfs to name it from, under a
/// hidden name beside the target that every exit path removes: `discard()` on failure, and
/// `SwapFile.removeStagedFiles()` from a signal watcher.
struct StagedSwapFile: ~Copyable {
    /// The file, open read-write.
    let descriptor: FileDescriptor
    /// Its hidden name in the folder; nil while it is unnamed.
    let temporaryPath: String?

    /// Makes the file for `path` (last component `name`) in `directory`.
    init(directory: String, name: String, path: String, bytes: Int64, staging: SwapFile.Staging) throws(SwapError) {
        if staging == .automatic, let fd = Self.openUnnamed(in: directory) {
            descriptor = FileDescriptor(adopting: fd)
            temporaryPath = nil
            return
        }
        let temporary = directory + "/." + name + ".userswap-" + SwapFile.randomSuffix()
        // Registered before it exists, so that a signal at any moment afterwards finds it.
        Self.register(temporary)
        do throws(Errno) {
            // O_EXCL|O_NOFOLLOW: a name someone planted (a link, a file) is never opened.
            descriptor = FileDescriptor(
                adopting: try Syscalls.open(
                    temporary, flags: O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, mode: 0o600))
        } catch {
            Self.unregister(temporary)
            throw SwapFile.directoryFailure(error, directory: directory, path: path, bytes: bytes)
        }
        temporaryPath = temporary
    }

    /// An unnamed file in `directory`, if the file system makes one and procfs can name it.
    private static func openUnnamed(in directory: String) -> Int32? {
        guard let fd = try? Syscalls.open(directory, flags: O_RDWR | Syscalls.temporaryFileFlag, mode: 0o600) else {
            // EOPNOTSUPP (the file system lacks O_TMPFILE) and EISDIR (the kernel does) lead to
            // a named file; so does any other error, which that attempt then reports.
            return nil
        }
        // Its name comes from linkat of /proc/self/fd/N; without procfs it could get none.
        guard (try? Syscalls.lstat(path: Syscalls.procPath(fd))) != nil else {
            Syscalls.close(fd)
            return nil
        }
        return fd
    }

    /// Gives the complete file the name `path`: only if nothing is there (one step that fails
    /// with EEXIST otherwise), or with `replacing`, in place of what is there (one rename).
    /// On failure the caller calls `discard()`.
    func install(at path: String, replacing: Bool) throws(SwapError) {
        do throws(Errno) {
            switch (temporaryPath, replacing) {
            case (nil, false):
                try Syscalls.linkOpenFile(descriptor.rawValue, to: path)
            case (nil, true):
                // Nothing links an open file over an existing name: link it under a hidden name
                // first, then rename that over the target.
                let (directory, name) = SwapFile.split(path)
                let temporary = directory + "/." + name + ".userswap-" + SwapFile.randomSuffix()
                Self.register(temporary)
                defer { Self.unregister(temporary) }
                try Syscalls.linkOpenFile(descriptor.rawValue, to: temporary)
                do throws(Errno) {
                    try Syscalls.rename(temporary, path)
                } catch {
                    try? Syscalls.unlink(temporary)
                    throw error
                }
            case (let temporary?, false):
                do throws(Errno) {
                    try Syscalls.renameNoReplace(temporary, path)
                } catch  where error == .invalidArgument || error.rawValue == ENOSYS {
                    // A file system without RENAME_NOREPLACE: link(2) fails on a taken name too.
                    try Syscalls.link(temporary, path)
                    try? Syscalls.unlink(temporary)
                }
                Self.unregister(temporary)
            case (let temporary?, true):
                try Syscalls.rename(temporary, path)
                Self.unregister(temporary)
            }
        } catch {
            if error == .fileExists {
                throw SwapError(
                    .fileExists,
                    "\(path) was created by another process while it was being formatted and was left as it is",
                    remedy: .replaceExisting, errno: error)
            }
            throw SwapError.file(path, error, doing: "name the new swap file")
        }
    }

    /// Removes the file after a failure: closing an unnamed file frees it; a named one is
    /// unlinked.
    func discard() {
        guard let temporaryPath else { return }
        try? Syscalls.unlink(temporaryPath)
        Self.unregister(temporaryPath)
    }

    // MARK: Names to remove on a signal

    /// Hidden names of files this process is formatting now.
    private static let names = Mutex<Set<String>>([], rank: .registry)

    private static func register(_ path: String) { _ = names.withLock { $0.insert(path) } }
    private static func unregister(_ path: String) { _ = names.withLock { $0.remove(path) } }

    /// The hidden names in use now.
    static var registered: Set<String> { names.withLock { $0 } }

    /// Unlinks every hidden name in use; returns how many.
    static func removeAll() -> Int {
        let all = names.withLock { names in
            defer { names.removeAll() }
            return names
        }
        for path in all { try? Syscalls.unlink(path) }
        return all.count
    }
}

extension SwapFile {
    /// Removes the hidden temporary files of every `format` in progress in this process (on
    /// file systems without `O_TMPFILE`); for a handler of SIGINT, SIGTERM or SIGHUP that exits
    /// afterwards. Not async-signal-safe: call it from a thread that watches for the signal, not
    /// from the signal handler. Returns how many it removed.
    @discardableResult
    public static func removeStagedFiles() -> Int { StagedSwapFile.removeAll() }
}
