import Glibc

/// Swap files that exist only while they are open: the kernel's swap has no file to leave
/// behind, and neither has a temporary UserSwap device.
extension SwapFile {
    /// Makes a swap file of `bytes` in `directory` (`temporaryDirectory` when nil) that has no
    /// name by the time any page reaches it, and opens it as a device: nobody can open it by a
    /// path, and the file system frees it when the last descriptor closes, whatever ends the
    /// process (SIGKILL included).
    ///
    /// Made with `O_TMPFILE | O_EXCL` where the file system has it (unnamed from the start, and
    /// never linkable into a folder). Elsewhere it is created, mode 0600, in a fresh `mkdtemp`
    /// folder (0700) inside `directory` and unlinked, with the folder, right after the open:
    /// only a process killed between those two calls leaves them behind.
    ///
    /// `writeOut` and `discard` mean what they mean for `format` and `open`.
    public static func openTemporary(
        bytes: Int64, in directory: String? = nil, writeOut: Bool = false, discard: Bool = false
    ) throws(SwapError) -> (header: SwapHeader, backend: FileBackend) {
        try openTemporary(bytes: bytes, in: directory, writeOut: writeOut, discard: discard, staging: .automatic)
    }

    /// `openTemporary`; `.named` skips O_TMPFILE (what file systems without it get), for tests.
    static func openTemporary(
        bytes: Int64, in directory: String?, writeOut: Bool, discard: Bool, staging: Staging
    ) throws(SwapError) -> (header: SwapHeader, backend: FileBackend) {
        let folder = directory ?? temporaryDirectory
        let name = "unnamed swap file in \(folder)"
        let (header, fileBytes) = try plannedHeader(path: name, bytes: bytes, label: "")
        let descriptor = try openUnlinked(in: folder, name: name, bytes: fileBytes, staging: staging)
        try fill(descriptor, header: header, bytes: fileBytes, writeOut: writeOut, path: name, directory: folder)
        let direct = try openDirect(descriptor, path: name)
        return (header, FileBackend(adopting: descriptor, direct: direct, path: name, header: header, discard: discard))
    }

    /// Where temporary swap files go by default: `$TMPDIR`, else /tmp.
    public static var temporaryDirectory: String {
        if let value = getenv("TMPDIR"), value.pointee != 0 { return String(cString: value) }
        return "/tmp"
    }

    /// A new, empty, private (0600) file in `folder` with no name, open read-write.
    static func openUnlinked(in folder: String, name: String, bytes: Int64, staging: Staging) throws(SwapError) -> FileDescriptor {
        if staging == .automatic {
            do throws(Errno) {
                // O_EXCL: the file can never be linked into a folder (linkat refuses it).
                return FileDescriptor(
                    adopting: try Syscalls.open(
                        folder, flags: O_RDWR | O_EXCL | Syscalls.temporaryFileFlag, mode: 0o600))
            } catch  where error == .notSupported || error == .isDirectory || error == .invalidArgument {
                // The file system (EOPNOTSUPP) or the kernel (EISDIR) lacks O_TMPFILE: below.
            } catch {
                throw directoryFailure(error, directory: folder, path: name, bytes: bytes)
            }
        }
        do throws(Errno) {
            let scratch = try Syscalls.makeTemporaryDirectory(prefix: folder + "/.userswap-")
            defer { try? Syscalls.rmdir(scratch) }
            let path = scratch + "/swap"
            let descriptor = FileDescriptor(
                adopting: try Syscalls.open(
                    path, flags: O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, mode: 0o600))
            try Syscalls.unlink(path)
            return descriptor
        } catch {
            throw directoryFailure(error, directory: folder, path: name, bytes: bytes)
        }
    }
}
