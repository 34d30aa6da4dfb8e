import Glibc
import UserSwap

/// The paths a command was given, checked before any work starts, so that a bad one is a
/// typed error in the first second rather than after a run of minutes (or a raw Foundation
/// error). Nothing here creates anything: a folder the user did not make is not made for them.
package enum PathCheck {
    /// A folder the command will write into (`--dir`, `TMPDIR`): it exists, is a folder, and
    /// the user may create files in it. `what` names it for the message ("--dir", "TMPDIR").
    package static func writableFolder(_ path: String, named what: String) throws(SwapError) {
        guard !path.isEmpty else { throw SwapError(.invalidArgument, "\(what) is empty; give a folder") }
        var st = stat()
        guard stat(path, &st) == 0 else {
            let errno = Errno(rawValue: Glibc.errno)
            if errno.rawValue == ENOENT {
                throw SwapError(.noSuchFile, "\(what) \(path) does not exist; create it first or give another folder", errno: errno)
            }
            throw SwapError(.ioError, "\(what) \(path) cannot be examined: \(errno.message)", errno: errno)
        }
        guard st.st_mode & S_IFMT == S_IFDIR else {
            throw SwapError(.invalidArgument, "\(what) \(path) is not a folder; give a folder for the swap files")
        }
        guard access(path, W_OK | X_OK) == 0 else {
            let errno = Errno(rawValue: Glibc.errno)
            throw SwapError(
                .permissionDenied, "\(what) \(path) is not writable (\(errno.message)); give a folder you can write", errno: errno)
        }
        // access(2) says yes to root everywhere, and to anyone on a file system that then
        // refuses new files (procfs, a read-only mount): make one, and remove it at once.
        var template = Array("\(path)/.userswap-check-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else {
            let errno = Errno(rawValue: Glibc.errno)
            throw SwapError(
                .permissionDenied, "\(what) \(path) takes no new files (\(errno.message)); give a folder on a writable disk", errno: errno)
        }
        close(fd)
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
    }

    /// A file the command will write (`--json FILE`): its folder exists and is writable, and
    /// the file, if it exists, is a regular file the user may replace.
    package static func writableFile(_ path: String, named what: String) throws(SwapError) {
        guard !path.isEmpty else { throw SwapError(.invalidArgument, "\(what) is empty; give a file name") }
        let slash = path.lastIndex(of: "/")
        let folder = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        var st = stat()
        if stat(path, &st) == 0, st.st_mode & S_IFMT == S_IFDIR {
            throw SwapError(.isDirectory, "\(what) \(path) is a folder; give a file name inside it")
        }
        do throws(SwapError) {
            try writableFolder(folder, named: "folder")
        } catch {
            throw error.adding(context: "\(what) \(path): ")
        }
    }

    /// The bytes an unprivileged user may still write on the file system under `folder`, or
    /// nil when it cannot be asked.
    package static func freeBytes(_ folder: String) -> Int64? {
        var fs = statvfs()
        guard statvfs(folder, &fs) == 0 else { return nil }
        return Int64(fs.f_bavail) * Int64(fs.f_frsize)
    }
}
