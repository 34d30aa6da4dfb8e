import CHiredis
import Synchronization
import UserSwap

/// What the two Redis devices (`RedisBackend`, one server; `RedisClusterBackend`, a cluster)
/// share: the `SwapBackend` transfers cut into one pointer per page, the range checks, freed
/// slots queued for deletion, and the counters. Each device says only how it reads and writes
/// a run of pages (`readPages`, `writePages`) and how it deletes keys (`unlink`).
protocol RedisPageDevice: SwapBackend {
    /// Keys and values (`RedisPageFormat`).
    var format: RedisPageFormat { get }
    /// Freed slots whose keys are still to be deleted.
    var deletions: RedisDeletionQueue { get }
    /// What the transfers did so far.
    var counters: RedisTransferCounters { get }

    /// Reads `pages` into `destinations` (one pointer per page, in order). Counts nothing: the
    /// caller does.
    func readPages(_ pages: Range<Int>, into destinations: [UnsafeMutableRawPointer]) throws(SwapError)
    /// Writes `pages` from `sources` (one pointer per page, in order); returns only once the
    /// device holds them as durably as it promises. Counts nothing: the caller does.
    func writePages(_ pages: Range<Int>, from sources: [UnsafeRawPointer]) throws(SwapError)
    /// Deletes the keys of `pages` now (the deleter thread, `discard`, `flushDeletions`).
    func unlink(_ pages: [Int]) throws(RedisFailure)
    /// A `RedisFailure` while doing `what`, in the device's terms.
    func swapError(_ failure: RedisFailure, doing what: String) -> SwapError
}

extension RedisPageDevice {
    // MARK: Transfers

    public func read(into buffer: UnsafeMutableRawBufferPointer, atPage page: Int) throws(SwapError) {
        let pages = checkedRange(bytes: buffer.count, atPage: page)
        guard let base = buffer.baseAddress else { return }
        try countedRead(pages, into: (0..<pages.count).map { base + $0 * SwapPage.size })
    }

    public func write(_ buffer: UnsafeRawBufferPointer, atPage page: Int) throws(SwapError) {
        let pages = checkedRange(bytes: buffer.count, atPage: page)
        guard let base = buffer.baseAddress else { return }
        try countedWrite(pages, from: (0..<pages.count).map { UnsafeRawPointer(base + $0 * SwapPage.size) })
    }

    public func read(into buffers: UnsafeBufferPointer<UnsafeMutableRawBufferPointer>, atPage page: Int) throws(SwapError) {
        let pages = checkedRange(bytes: buffers.reduce(0) { $0 + $1.count }, atPage: page)
        let starts = Self.pageStarts(buffers.lazy.map { UnsafeRawBufferPointer($0) }, pages: pages.count, "read")
        try countedRead(pages, into: starts.map { UnsafeMutableRawPointer(mutating: $0) })
    }

    public func write(_ buffers: UnsafeBufferPointer<UnsafeRawBufferPointer>, atPage page: Int) throws(SwapError) {
        let pages = checkedRange(bytes: buffers.reduce(0) { $0 + $1.count }, atPage: page)
        try countedWrite(pages, from: Self.pageStarts(buffers, pages: pages.count, "write"))
    }

    private func countedRead(_ pages: Range<Int>, into destinations: [UnsafeMutableRawPointer]) throws(SwapError) {
        guard !pages.isEmpty else { return }
        do {
            try readPages(pages, into: destinations)
        } catch {
            counters.failedCalls.add(1, ordering: .relaxed)  // Relaxed: a statistic
            throw error
        }
        // Relaxed: statistics
        counters.readCalls.add(1, ordering: .relaxed)
        counters.pagesRead.add(pages.count, ordering: .relaxed)
    }

    private func countedWrite(_ pages: Range<Int>, from sources: [UnsafeRawPointer]) throws(SwapError) {
        guard !pages.isEmpty else { return }
        do {
            try writePages(pages, from: sources)
        } catch {
            counters.failedCalls.add(1, ordering: .relaxed)  // Relaxed: a statistic
            throw error
        }
        // Relaxed: statistics
        counters.writeCalls.add(1, ordering: .relaxed)
        counters.pagesWritten.add(pages.count, ordering: .relaxed)
    }

    /// The pages a transfer of `bytes` at `page` covers; the same contract as the other backends.
    func checkedRange(bytes: Int, atPage page: Int) -> Range<Int> {
        checkedTransferRange(bytes: bytes, atPage: page, pageCount: pageCount)
    }

    /// The start of every page of a vectored transfer's buffers, in order.
    static func pageStarts(_ buffers: some Sequence<UnsafeRawBufferPointer>, pages: Int, _ what: String) -> [UnsafeRawPointer] {
        var starts: [UnsafeRawPointer] = []
        starts.reserveCapacity(pages)
        for b in buffers {
            require(b.count % SwapPage.size == 0, "a vectored \(what) buffer of \(b.count) bytes is not whole pages")
            guard let base = b.baseAddress else { continue }
            for i in 0..<b.count / SwapPage.size { starts.append(base + i * SwapPage.size) }
        }
        return starts
    }

    /// The values of `pages` encoded into one allocation (one `RedisPageFormat.valueSize` slice
    /// per page, in order); `generation` gives each page's write generation. The caller
    /// deallocates it.
    func encodeValues(
        _ pages: Range<Int>, from sources: [UnsafeRawPointer], generation: (Int) -> UInt32 = { _ in 0 }
    ) -> UnsafeMutableRawBufferPointer {
        require(sources.count == pages.count, "\(sources.count) sources for \(pages.count) pages")
        let values = UnsafeMutableRawBufferPointer.allocate(byteCount: pages.count * RedisPageFormat.valueSize, alignment: 16)
        for (i, p) in pages.enumerated() {
            // In bounds: `values` holds one value per page of `pages`.
            format.encode(page: p, generation: generation(p), from: sources[i], into: values.baseAddress! + i * RedisPageFormat.valueSize)
        }
        return values
    }

    /// The value of page `p` in `values` made by `encodeValues(pages, …)`.
    static func value(of p: Int, in values: UnsafeMutableRawBufferPointer, pages: Range<Int>) -> UnsafeRawBufferPointer {
        require(pages.contains(p), "page \(p) outside the pages \(pages) of the request")
        let offset = (p - pages.lowerBound) * RedisPageFormat.valueSize
        return UnsafeRawBufferPointer(rebasing: values[offset..<offset + RedisPageFormat.valueSize])
    }

    /// Checks one GET/MGET value (that `page`'s latest write, `generation`, is there) and copies
    /// the page out of it. A value that is missing or an older write counts as a lost page;
    /// `whyLost` says how this device loses values.
    func decode(
        _ reply: RedisReplyView, page: Int, generation: UInt32 = 0, into destination: UnsafeMutableRawPointer, whyLost: String
    ) throws(RedisFailure) {
        try reply.checkNotError()
        if reply.isNil {
            counters.lostPages.add(1, ordering: .relaxed)  // Relaxed: a statistic
            throw .data("page \(page) (key \(format.key(of: page))) has no value, though this device wrote it: \(whyLost)")
        }
        guard reply.type == REDIS_REPLY_STRING else {
            throw .data("page \(page) (key \(format.key(of: page))) is not a string value (reply type \(reply.type))")
        }
        switch format.check(page: page, generation: generation, value: reply.bytes, into: destination) {
        case .intact:
            return
        case .olderWrite(let problem):
            counters.lostPages.add(1, ordering: .relaxed)  // Relaxed: a statistic
            throw .data("page \(page) (key \(format.key(of: page))): \(problem)")
        case .invalid(let problem):
            throw .data("page \(page) (key \(format.key(of: page))): \(problem)")
        }
    }

    // MARK: Freed slots

    /// Every freed slot's key is deleted, so the server's memory follows the device's use.
    public var wantsInvalidation: Bool { true }

    /// Queues the deletion of `page`'s key. Called under the engine's cluster lock: no I/O here.
    public func invalidate(page: Int) {
        assert(page >= 1 && page < pageCount, "invalidate of page \(page) outside the device's 1..<\(pageCount)")
        deletions.add(page)
    }

    /// Deletes the keys of `pages` now (the engine calls this for a freed cluster only when the
    /// device was added with discard on; per-slot invalidation already covers the rest).
    public func discard(pages: Range<Int>) throws(SwapError) {
        guard !pages.isEmpty else { return }
        require(
            pages.lowerBound >= 1 && pages.upperBound <= pageCount,
            "discard of pages \(pages) outside the device's 1..<\(pageCount)")
        deletions.claim(pages)
        do {
            try unlink(Array(pages))
        } catch {
            throw swapError(error, doing: "delete device pages \(pages)")
        }
    }

    /// Sends the deletions still queued and returns when they are answered (tests, and a
    /// program that wants the server's memory back at once).
    public func flushDeletions() {
        deletions.flush { pages throws(RedisFailure) in try unlink(pages) }
        deletions.waitUntilIdle()
    }
}

/// `pages` cut at key-group boundaries (`RedisPageFormat.groupPages`), and the UNLINK commands
/// of a set of pages, one per key group.
extension RedisPageFormat {
    /// `pages` cut at key-group boundaries.
    static func groups(_ pages: Range<Int>) -> [Range<Int>] {
        var result: [Range<Int>] = []
        var start = pages.lowerBound
        while start < pages.upperBound {
            let end = min(pages.upperBound, (group(of: start) + 1) * groupPages)
            result.append(start..<end)
            start = end
        }
        return result
    }

    /// One UNLINK per key group of `pages` (any order), with a page of that group.
    func unlinkCommands(_ pages: [Int]) -> [(page: Int, command: RedisCommand)] {
        let sorted = pages.sorted()
        var commands: [(page: Int, command: RedisCommand)] = []
        var i = 0
        while i < sorted.count {
            let first = sorted[i]
            var unlink = RedisCommand("UNLINK")
            while i < sorted.count, Self.group(of: sorted[i]) == Self.group(of: first) {
                unlink.appendKey(of: sorted[i], format: self)
                i += 1
            }
            commands.append((first, unlink))
        }
        return commands
    }

    /// `1234` for one page, `1..<9` for several.
    static func describe(_ pages: Range<Int>) -> String {
        pages.count == 1 ? "\(pages.lowerBound)" : "\(pages.lowerBound)..<\(pages.upperBound)"
    }
}

/// What a Redis device's transfers did (`RedisBackend.Statistics`,
/// `RedisClusterBackend.Statistics`).
public struct RedisTransferStatistics: Sendable, Equatable {
    /// Pages read.
    public var pagesRead: Int
    /// Transfers that read pages.
    public var readCalls: Int
    /// Pages written.
    public var pagesWritten: Int
    /// Transfers that wrote pages.
    public var writeCalls: Int
    /// Transfers that ended in an error.
    public var failedCalls: Int
    /// Pages a read found lost: no value where this device wrote one, or an older write of the
    /// page (each read failed with `ioError`, naming the page).
    public var lostPages: Int
    /// Keys of freed slots deleted.
    public var pagesDeleted: Int
    /// Deletions given up (their keys stay, never read).
    public var deleteFailures: Int
}

/// The counters both Redis devices keep; relaxed, read after the transfers they count.
final class RedisTransferCounters: Sendable {
    let pagesRead = Atomic<Int>(0)
    let readCalls = Atomic<Int>(0)
    let pagesWritten = Atomic<Int>(0)
    let writeCalls = Atomic<Int>(0)
    let failedCalls = Atomic<Int>(0)
    /// Pages read whose latest write was gone: no value, or an older write.
    let lostPages = Atomic<Int>(0)

    /// The counters now, with the deleter's.
    func snapshot(deletions: RedisDeletionQueue) -> RedisTransferStatistics {
        RedisTransferStatistics(
            // Relaxed loads: statistics, read after the transfers they count.
            pagesRead: pagesRead.load(ordering: .relaxed), readCalls: readCalls.load(ordering: .relaxed),
            pagesWritten: pagesWritten.load(ordering: .relaxed), writeCalls: writeCalls.load(ordering: .relaxed),
            failedCalls: failedCalls.load(ordering: .relaxed), lostPages: lostPages.load(ordering: .relaxed),
            pagesDeleted: deletions.pagesDeleted.load(ordering: .relaxed),
            deleteFailures: deletions.deleteFailures.load(ordering: .relaxed))
    }
}

extension _RedisConnection {
    /// SCANs the connection's server for keys matching `pattern` and hands each batch found to
    /// `body`; the sum of what `body` returns.
    func scan(matching pattern: String, _ body: (RedisReplyView) throws(RedisFailure) -> Int) throws(RedisFailure) -> Int {
        var cursor = "0"
        var total = 0
        repeat {
            var scan = RedisCommand("SCAN")
            scan.append(cursor)
            scan.append("MATCH")
            scan.append(pattern)
            scan.append("COUNT")
            scan.append("1000")
            let reply = try command(scan)
            let r = reply.view
            try r.checkNotError()
            guard r.elementCount == 2 else { throw .data("SCAN answered \(r.elementCount) elements instead of 2") }
            cursor = r.element(0).text
            total += try body(r.element(1))
        } while cursor != "0"
        return total
    }
}
