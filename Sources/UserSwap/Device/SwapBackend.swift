/// Where a swap device's pages live: a file, memory, and later io_uring, a compressed pool or a
/// Redis server. Offsets are in pages from the start of the device; page 0 holds the header and
/// the engine never reads or writes it through this protocol.
///
/// Every transfer moves whole pages (`buffer.count` is a multiple of `SwapBackend.pageSize`) and
/// either completes or throws a `SwapError`: a short transfer is retried by the backend, never
/// reported as success.
public protocol SwapBackend: AnyObject, Sendable {
    /// Pages in the device, header included.
    var pageCount: Int { get }

    /// Reads `buffer.count / pageSize` consecutive pages starting at `page`.
    func read(into buffer: UnsafeMutableRawBufferPointer, atPage page: Int) throws(SwapError)

    /// Writes `buffer.count / pageSize` consecutive pages starting at `page`.
    func write(_ buffer: UnsafeRawBufferPointer, atPage page: Int) throws(SwapError)

    /// Vectored read: consecutive device pages starting at `page` land in `buffers` in order
    /// (each a whole number of pages), in one system call where the backend can.
    func read(into buffers: UnsafeBufferPointer<UnsafeMutableRawBufferPointer>, atPage page: Int) throws(SwapError)

    /// Vectored write, the mirror of the vectored read.
    func write(_ buffers: UnsafeBufferPointer<UnsafeRawBufferPointer>, atPage page: Int) throws(SwapError)

    /// Tells the backend that `pages` hold nothing any more (a freed cluster), so it may give the
    /// space back (a file punches a hole). A backend without discard does nothing.
    func discard(pages: Range<Int>) throws(SwapError)

    /// Whether the backend wants `invalidate(page:)` for every freed slot (a tier that keeps
    /// copies of its own, like a compressed pool). False by default: the engine then skips it.
    var wantsInvalidation: Bool { get }

    /// Whether the backend keeps its pages in this process's memory, so that a read is a copy
    /// that completes on the calling thread (kernel: a block device with `SWP_SYNCHRONOUS_IO`,
    /// zram or brd). After a swap-in from such a device the slot is always freed: a clean copy
    /// kept there would cost memory twice to save a write that is itself a copy. False by
    /// default (a file, a remote store); a tier is as synchronous as the backend below it.
    var isSynchronous: Bool { get }

    /// Whether every page written through this backend is sealed (encrypted and authenticated)
    /// before it is stored: an `EncryptedTier`, or a tier above one. A space's encryption does
    /// not wrap such a backend again. False by default.
    var sealsPages: Bool { get }

    /// Whether a read (`readConsuming(into:atPage:)` of one page) may run in a signal handler
    /// that interrupted the application anywhere: it allocates no memory (an error may, on its
    /// way out) and takes no lock that code outside the backend could hold, or that its holder
    /// keeps across an allocation. Faults served on the faulting thread read such a device in
    /// their SIGBUS handler; any other device's pages are read for them by a thread of the
    /// engine. False by default; true for a swap file (one `pread`) and for memory (a copy).
    var readsInSignalHandler: Bool { get }

    /// Every slot of `pages` is free (a cluster emptied): drop what the backend keeps in this
    /// process's memory for them, so that its memory follows the slots in use rather than every
    /// slot ever used. Called with the cluster's lock held: quick, no I/O, no call into the engine.
    func forget(pages: Range<Int>)

    /// The slot at `page` was freed: drop any copy kept for it (kernel: `zswap_invalidate`).
    /// Called with the slot's cluster lock held: it must be quick and must not call the engine.
    func invalidate(page: Int)

    /// Reads like `read(into:atPage:)` and returns true if the backend gave up its copy in doing
    /// so (an exclusive load, as zswap's): the engine then marks the page dirty, so it is
    /// written again before it leaves memory.
    func readConsuming(into buffer: UnsafeMutableRawBufferPointer, atPage page: Int) throws(SwapError) -> Bool

    /// The vectored form: true if the backend gave up its copy of any page read.
    func readConsuming(into buffers: UnsafeBufferPointer<UnsafeMutableRawBufferPointer>, atPage page: Int) throws(SwapError) -> Bool
}

extension SwapBackend {
    /// The page size of every UserSwap device (the format's and the allocator's unit).
    public static var pageSize: Int { SwapPage.size }

    public func read(into buffers: UnsafeBufferPointer<UnsafeMutableRawBufferPointer>, atPage page: Int) throws(SwapError) {
        var next = page
        for buffer in buffers {
            try read(into: buffer, atPage: next)
            next += buffer.count / SwapPage.size
        }
    }

    public func write(_ buffers: UnsafeBufferPointer<UnsafeRawBufferPointer>, atPage page: Int) throws(SwapError) {
        var next = page
        for buffer in buffers {
            try write(buffer, atPage: next)
            next += buffer.count / SwapPage.size
        }
    }

    public func discard(pages: Range<Int>) throws(SwapError) {}

    public var wantsInvalidation: Bool { false }

    public var sealsPages: Bool { false }

    public var readsInSignalHandler: Bool { false }

    /// Not synchronous: the backend's pages live outside this process's memory.
    public var isSynchronous: Bool { false }

    public func invalidate(page: Int) {}

    public func forget(pages: Range<Int>) {}

    public func readConsuming(into buffer: UnsafeMutableRawBufferPointer, atPage page: Int) throws(SwapError) -> Bool {
        try read(into: buffer, atPage: page)
        return false
    }

    public func readConsuming(into buffers: UnsafeBufferPointer<UnsafeMutableRawBufferPointer>, atPage page: Int) throws(SwapError) -> Bool
    {
        try read(into: buffers, atPage: page)
        return false
    }
}

/// The unit of everything UserSwap stores: one 4 KiB page, the size Linux swap files use on
/// x86-64 and arm64 with 4 KiB pages.
public enum SwapPage {
    /// Bytes in a page.
    public static let size = 4096
    /// log2 of `size`: a page index shifted left by it is a byte offset.
    public static let shift = 12
}

/// The pages a transfer of `bytes` at `page` covers on a device of `pageCount` pages. Every
/// backend checks the engine's contract here, at the device's edge: whole pages, never the
/// header (page 0), never past the end.
package func checkedTransferRange(bytes: Int, atPage page: Int, pageCount: Int) -> Range<Int> {
    require(bytes % SwapPage.size == 0, "a transfer of \(bytes) bytes is not whole pages")
    let pages = page..<page + bytes / SwapPage.size
    require(
        page >= 1 && pages.upperBound <= pageCount,
        "transfer of pages \(pages) outside the device's 1..<\(pageCount) (page 0 is the header)")
    return pages
}
