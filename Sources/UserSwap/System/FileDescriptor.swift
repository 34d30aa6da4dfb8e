import Glibc

/// An open file descriptor that closes itself. Non-copyable, so exactly one owner closes it.
package struct FileDescriptor: ~Copyable, Sendable {
    public let rawValue: Int32

    init(adopting fd: Int32) { rawValue = fd }

    deinit { Syscalls.close(rawValue) }

    /// Reads exactly `buffer.count` bytes at `offset`, looping over short reads. Throws
    /// `Errno.ioError` if the file ends first (a truncated device is an I/O error, not zeros).
    func readAll(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(Errno) {
        try Self.readAll(rawValue, into: buffer, at: offset)
    }

    /// `readAll` on a raw descriptor the caller keeps open.
    static func readAll(_ rawValue: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(Errno) {
        var done = 0
        while done < buffer.count {
            let n = try Syscalls.pread(
                rawValue, UnsafeMutableRawBufferPointer(rebasing: buffer[done...]),
                offset: offset + Int64(done))
            if n == 0 { throw .ioError }
            done += n
        }
    }

    /// Writes exactly `buffer.count` bytes at `offset`, looping over short writes.
    func writeAll(_ buffer: UnsafeRawBufferPointer, at offset: Int64) throws(Errno) {
        try Self.writeAll(rawValue, buffer, at: offset)
    }

    /// `writeAll` on a raw descriptor the caller keeps open.
    static func writeAll(_ rawValue: Int32, _ buffer: UnsafeRawBufferPointer, at offset: Int64) throws(Errno) {
        var done = 0
        while done < buffer.count {
            let n = try Syscalls.pwrite(
                rawValue, UnsafeRawBufferPointer(rebasing: buffer[done...]),
                offset: offset + Int64(done))
            if n == 0 { throw .noSpace }
            done += n
        }
    }
}
