import CUserSwap
import Glibc
import UserSwap

/// A scratch file read and written with `O_DIRECT`, for `bench device-limits`: what the disk
/// under a swap file can do, without the page cache (UserSwap's `FileBackend` and the kernel's
/// swap both bypass it). Transfers must be aligned: buffers, offsets and lengths multiples of
/// 4 KiB. Direct libc calls, as `AnonymousPageStore`'s: the engine's `Syscalls` are internal.
///
/// The one place the descriptor lives. The file is unlinked as soon as it is open (its blocks
/// live until `deinit` closes it), so no exit, even by SIGKILL, leaves it behind.
final class DirectIOFile: Sendable {
    let path: String
    let bytes: Int64
    private let fd: Int32
    /// The descriptor, for requests submitted elsewhere (an io_uring: `RawRandomReads`); valid
    /// while this object lives.
    var descriptor: Int32 { fd }

    /// Creates `path` with `bytes` allocated (`fallocate`, as a swap file is).
    init(path: String, bytes: Int64) throws {
        require(bytes > 0 && bytes % 4096 == 0, "a direct-I/O file of \(bytes) bytes: whole 4 KiB pages, at least one")
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | cus_O_DIRECT(), 0o600)
        guard fd >= 0 else {
            throw BenchError(
                "cannot create \(path) with O_DIRECT: \(String(cString: strerror(errno))) (the file system must support direct I/O)")
        }
        unlink(path)
        self.fd = fd
        self.path = path
        self.bytes = bytes
        let result = cus_fallocate(fd, 0, 0, bytes)
        guard result == 0 else {
            let text = String(cString: strerror(-result))
            Glibc.close(fd)
            throw BenchError("cannot allocate \(bytes) bytes for \(path): \(text)")
        }
    }

    /// Gives every block back and allocates them again, so that the next write goes into
    /// unwritten extents, as the first write of a fresh swap file's slots does.
    func reallocate() throws {
        var result = cus_punch_hole(fd, 0, bytes)
        if result == 0 { result = cus_fallocate(fd, 0, 0, bytes) }
        guard result == 0 else { throw BenchError("cannot reallocate \(path): \(String(cString: strerror(-result)))") }
    }

    /// Writes `buffer`'s scattered pages at `offset` in one `pwritev` (see `read(into:at:)`).
    func write(_ buffer: ScatteredPages, at offset: Int64) throws {
        try transfer(buffer, at: offset, "pwritev") { pwritev(fd, $0, $1, $2) }
    }

    /// One vectored call over `buffer`'s pages, EINTR retried.
    private func transfer(
        _ buffer: ScatteredPages, at offset: Int64, _ name: String,
        _ call: (UnsafePointer<iovec>?, Int32, Int) -> Int
    ) throws {
        var n: Int
        repeat {
            n = call(buffer.vectors.baseAddress, Int32(buffer.vectors.count), Int(offset))
        } while n < 0 && errno == EINTR
        guard n == buffer.byteCount else {
            throw BenchError(
                "O_DIRECT \(name) of \(path) at \(offset): \(n < 0 ? String(cString: strerror(errno)) : "\(n) of \(buffer.byteCount) bytes")"
            )
        }
    }

    deinit {
        Glibc.close(fd)
    }

    /// Reads `buffer.count` bytes at `offset`, looping over short reads; EINTR retried.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws {
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, Int(offset) + done)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw BenchError("O_DIRECT read of \(path) at \(offset): \(n == 0 ? "end of file" : String(cString: strerror(errno)))")
            }
            done += n
        }
    }

    /// Reads `buffer.byteCount` bytes at `offset` into its scattered pages in one `preadv`, as
    /// a swap-in run reads into frames that lie anywhere in memory. A short read is an error:
    /// with `O_DIRECT` inside the file it does not happen.
    func read(into buffer: ScatteredPages, at offset: Int64) throws {
        try transfer(buffer, at: offset, "preadv") { preadv(fd, $0, $1, $2) }
    }

    /// Writes `buffer` at `offset`, looping over short writes; EINTR retried.
    func write(_ buffer: UnsafeRawBufferPointer, at offset: Int64) throws {
        var done = 0
        while done < buffer.count {
            let n = pwrite(fd, buffer.baseAddress! + done, buffer.count - done, Int(offset) + done)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw BenchError("O_DIRECT write of \(path) at \(offset): \(String(cString: strerror(errno)))") }
            done += n
        }
    }
}

/// A page-aligned buffer owned by one benchmark thread.
final class AlignedBuffer {
    let bytes: UnsafeMutableRawBufferPointer

    init(count: Int, fill: UInt8 = 0xA5) {
        bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 4096)
        bytes.initializeMemory(as: UInt8.self, repeating: fill)
    }

    deinit { bytes.deallocate() }
}

/// `count` pages of one benchmark thread's memory, every other page of a buffer twice that size,
/// as the vectors of one `preadv` or `pwritev`: no two are adjacent, so the block layer cannot
/// merge them and each page is one segment of the request — the shape of a 4 KiB swap-in or
/// swap-out run, whose frames lie anywhere in the arena.
final class ScatteredPages {
    private let memory: AlignedBuffer
    let vectors: UnsafeMutableBufferPointer<iovec>
    var byteCount: Int { vectors.count * 4096 }

    init(count: Int) {
        memory = AlignedBuffer(count: 2 * count * 4096)
        vectors = .allocate(capacity: count)
        for i in 0..<count {
            vectors[i] = iovec(iov_base: memory.bytes.baseAddress! + 2 * i * 4096, iov_len: 4096)
        }
    }

    deinit { vectors.deallocate() }
}
