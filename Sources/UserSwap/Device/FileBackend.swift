import CUserSwap
import Glibc
import Synchronization

/// A swap device in a regular file formatted with a Linux v1 swap header: the kernel's swap file
/// (`swapfile.c` reads and writes one through `bmap`ed blocks; we use pread/pwrite on the file).
///
/// It holds an exclusive `flock` on the file for its whole life, so a second UserSwap user of the
/// same file (this process or another) is refused with `.fileInUse` instead of corrupting it.
/// Transfers to different pages may run concurrently from any thread: pread/pwrite carry their
/// own offsets, and the only shared mutable state is an atomic flag.
///
/// Made by `SwapFile.open(path:discard:)`, which validates the header first.
public final class FileBackend: SwapBackend {
    /// The path the file was opened at, for messages.
    public let path: String
    /// The header read (or written) when the device was opened.
    public let header: SwapHeader
    /// Pages in the device, header included (`header.pageCount`).
    public let pageCount: Int
    /// The open file (read-write, close-on-exec), flock-ed exclusively until it closes in our
    /// deinit. Never changes, so reading it needs no lock.
    let descriptor: FileDescriptor
    /// A second descriptor of the same file (reopened from the first, never from the path)
    /// with `O_DIRECT`, for page-aligned transfers
    /// (every transfer of the engine's frames): swap data then bypasses the page cache, as the
    /// kernel's swap does, instead of keeping a second copy of swapped pages in memory outside
    /// the budget. Nil where the file system refuses `O_DIRECT` (tmpfs): buffered I/O then.
    private let direct: FileDescriptor?
    private let directFD: Int32
    /// Whether the user asked for freed clusters to be punched out of the file.
    private let discardRequested: Bool
    /// Set the first time the file system answers a hole punch with EOPNOTSUPP, so that later
    /// discards skip the system call. Only ever goes false → true.
    private let discardUnsupported = Atomic<Bool>(false)

    /// Takes over `descriptor`, which the caller has opened read-write, locked with `flock`, and
    /// whose first page decoded as `header`, and `direct`, the same file reopened with `O_DIRECT`
    /// (see `SwapFile.openDirect`), if the file system allows it.
    init(
        adopting descriptor: consuming FileDescriptor, direct: consuming FileDescriptor?, path: String,
        header: SwapHeader, discard: Bool
    ) {
        self.descriptor = descriptor
        self.path = path
        self.header = header
        self.pageCount = header.pageCount
        self.discardRequested = discard
        directFD = direct?.rawValue ?? -1
        self.direct = direct
    }

    /// Whether transfers bypass the page cache.
    public var isDirect: Bool { directFD >= 0 }

    /// True: a read is one `pread` (a loop over short reads) on a descriptor that stays open.
    public var readsInSignalHandler: Bool { true }

    /// The descriptor for a transfer at `address` of `count` bytes: the direct one when both are
    /// page-aligned (O_DIRECT's rule; device offsets always are).
    @inline(__always)
    private func fd(for address: UnsafeRawPointer?, count: Int) -> Int32 {
        guard directFD >= 0, let address, Int(bitPattern: address) & (SwapPage.size - 1) == 0,
            count & (SwapPage.size - 1) == 0
        else { return descriptor.rawValue }
        return directFD
    }

    /// The descriptor for an I/O engine's transfer: the direct one for page-aligned buffers
    /// (device offsets always are), else the buffered one. Valid as long as this backend lives.
    func descriptor(aligned: Bool) -> Int32 {
        aligned && directFD >= 0 ? directFD : descriptor.rawValue
    }

    /// Whether `discard(pages:)` really punches holes: asked for, and not refused by the file
    /// system so far.
    public var discardsPages: Bool {
        // Relaxed: the flag is a hint that only saves a system call; a racing discard that still
        // sees false makes one more punch that fails with EOPNOTSUPP and is ignored again.
        discardRequested && !discardUnsupported.load(ordering: .relaxed)
    }

    // MARK: Transfers

    public func read(into buffer: UnsafeMutableRawBufferPointer, atPage page: Int) throws(SwapError) {
        let pages = checkedRange(bytes: buffer.count, atPage: page)
        guard !pages.isEmpty else { return }
        do throws(Errno) {
            try FileDescriptor.readAll(fd(for: buffer.baseAddress, count: buffer.count), into: buffer, at: Self.offset(of: page))
        } catch {
            throw failure(error, writing: false, pages: pages)
        }
    }

    public func write(_ buffer: UnsafeRawBufferPointer, atPage page: Int) throws(SwapError) {
        let pages = checkedRange(bytes: buffer.count, atPage: page)
        guard !pages.isEmpty else { return }
        do throws(Errno) {
            try FileDescriptor.writeAll(fd(for: buffer.baseAddress, count: buffer.count), buffer, at: Self.offset(of: page))
        } catch {
            throw failure(error, writing: true, pages: pages)
        }
    }

    /// One preadv per `Syscalls.iovMax` buffers (usually one in all), looping over short reads.
    public func read(into buffers: UnsafeBufferPointer<UnsafeMutableRawBufferPointer>, atPage page: Int) throws(SwapError) {
        let bytes = buffers.reduce(0) { $0 + $1.count }
        let pages = checkedRange(bytes: bytes, atPage: page)
        guard !pages.isEmpty else { return }
        var vectors = buffers.map { buffer in
            require(buffer.count % SwapPage.size == 0, "a vectored read buffer of \(buffer.count) bytes is not whole pages")
            return iovec(iov_base: buffer.baseAddress, iov_len: buffer.count)
        }
        try transferVectored(&vectors, pages: pages, writing: false)
    }

    /// One pwritev per `Syscalls.iovMax` buffers (usually one in all), looping over short writes.
    public func write(_ buffers: UnsafeBufferPointer<UnsafeRawBufferPointer>, atPage page: Int) throws(SwapError) {
        let bytes = buffers.reduce(0) { $0 + $1.count }
        let pages = checkedRange(bytes: bytes, atPage: page)
        guard !pages.isEmpty else { return }
        var vectors = buffers.map { buffer in
            require(buffer.count % SwapPage.size == 0, "a vectored write buffer of \(buffer.count) bytes is not whole pages")
            // pwritev only reads through iov_base; iovec has one pointer type for both ways.
            return iovec(iov_base: UnsafeMutableRawPointer(mutating: buffer.baseAddress), iov_len: buffer.count)
        }
        try transferVectored(&vectors, pages: pages, writing: true)
    }

    /// Moves every byte `vectors` describe, starting at the device offset of `pages`. A short
    /// transfer can stop anywhere, even inside one iovec: the completed iovecs are dropped and
    /// the partly done one is advanced, so the next call resumes at the exact byte.
    private func transferVectored(_ vectors: inout [iovec], pages: Range<Int>, writing: Bool) throws(SwapError) {
        var offset = Self.offset(of: pages.lowerBound)
        var first = 0
        let fd = vectors.allSatisfy({ self.fd(for: $0.iov_base, count: $0.iov_len) == directFD }) ? directFD : descriptor.rawValue
        do throws(Errno) {
            try vectors.withUnsafeMutableBufferPointer { (iov) throws(Errno) in
                while true {
                    while first < iov.count, iov[first].iov_len == 0 { first += 1 }
                    if first == iov.count { return }
                    let count = min(iov.count - first, Syscalls.iovMax)
                    // In bounds: first < iov.count, and count ≤ iov.count - first.
                    let start = UnsafePointer(iov.baseAddress! + first)
                    let done =
                        writing
                        ? try Syscalls.pwritev(fd, start, count: count, offset: offset)
                        : try Syscalls.preadv(fd, start, count: count, offset: offset)
                    // End of file inside the device is a truncated file (reads), and a write that
                    // moves nothing is a full disk: never loop forever on 0.
                    if done == 0 { throw writing ? Errno.noSpace : Errno.ioError }
                    offset += Int64(done)
                    var left = done
                    while left > 0 {
                        let length = iov[first].iov_len
                        if left >= length {
                            left -= length
                            first += 1
                        } else {
                            // Still inside this iovec's buffer: left < iov_len.
                            iov[first].iov_base = iov[first].iov_base! + left
                            iov[first].iov_len = length - left
                            left = 0
                        }
                    }
                }
            }
        } catch {
            throw failure(error, writing: writing, pages: pages)
        }
    }

    // MARK: Discard

    /// Punches `pages` out of the file (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) so a freed
    /// cluster gives its blocks back, as the kernel's `discard_swap_cluster` does for SSDs. The
    /// file keeps its size; reading a punched page returns zeros. A file system that cannot punch
    /// holes (EOPNOTSUPP) turns discard into a no-op from then on.
    ///
    /// The hole makes the file unusable by the kernel's `swapon` (it refuses files with holes)
    /// until it is formatted again; that is why discard is opt-in.
    public func discard(pages: Range<Int>) throws(SwapError) {
        guard discardsPages, !pages.isEmpty else { return }
        require(
            pages.lowerBound >= 1 && pages.upperBound <= pageCount,
            "discard of pages \(pages) outside the device's 1..<\(pageCount)")
        do throws(Errno) {
            try Syscalls.punchHole(
                descriptor.rawValue, offset: Self.offset(of: pages.lowerBound),
                length: Int64(pages.count) * Int64(SwapPage.size))
        } catch  where error == .notSupported {
            // Relaxed: see `discardsPages`; nothing else is published with the flag.
            discardUnsupported.store(true, ordering: .relaxed)
        } catch {
            throw failure(error, writing: true, pages: pages)
        }
    }

    // MARK: Helpers

    private static func offset(of page: Int) -> Int64 { Int64(page) * Int64(SwapPage.size) }

    /// The pages a transfer of `bytes` at `page` covers. The engine's contract (whole pages,
    /// never the header, never past the end) is checked here, at the device's edge.
    private func checkedRange(bytes: Int, atPage page: Int) -> Range<Int> {
        checkedTransferRange(bytes: bytes, atPage: page, pageCount: pageCount)
    }

    /// The engine error for a failed transfer of `pages`.
    func failure(_ errno: Errno, writing: Bool, pages: Range<Int>) -> SwapError {
        let what = "\(writing ? "write" : "read") pages \(pages.lowerBound)..<\(pages.upperBound) of swap file \(path)"
        switch errno.rawValue {
        case ENOSPC, EDQUOT, EFBIG:
            return SwapError(
                .diskFull,
                "cannot \(what): its file system is full; free space on it (the swap file was not preallocated, or was punched by discard)",
                errno: errno)
        case ETXTBSY:
            return SwapError(
                .fileInUse, "cannot \(what): the kernel is using it as swap (swapon); run `swapoff \(path)` first", errno: errno)
        case EIO where !writing:
            // FileDescriptor reports end of file as EIO; say so when the file has shrunk.
            if let size = try? Syscalls.fstat(descriptor.rawValue).st_size,
                Int64(size) < Self.offset(of: pages.upperBound)
            {
                return SwapError(
                    .ioError,
                    "cannot \(what): the file was truncated to \(SwapHeader.describe(bytes: Int64(size))) but its header describes \(pageCount) pages; the data in it is lost",
                    errno: errno)
            }
            return SwapError(.ioError, "cannot \(what): \(errno.message); the disk may be failing", errno: errno)
        default:
            return SwapError(.ioError, "cannot \(what): \(errno.message)", errno: errno)
        }
    }
}
