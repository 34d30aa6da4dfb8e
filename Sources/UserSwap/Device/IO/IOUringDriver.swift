import Foundation
import Synchronization

/// The io_uring engine for a swap file: submitters put their requests straight into the ring
/// (reads at once; writes only while fewer than `maxWritesInFlight` are in the kernel, the rest
/// in a queue), and one completion thread takes completions, records each outcome in its slot,
/// wakes its submitter, and submits the next queued writes. A read therefore never waits in the
/// device queue behind more than `maxWritesInFlight` write-backs.
///
/// Transfers use the file's `O_DIRECT` descriptor when the buffers are page-aligned (the engine's
/// frames always are), its buffered one otherwise.
final class IOUringDriver {
    private struct State: ~Copyable {
        var queuedWrites: IOSlotQueue
        var writesInFlight = 0
        /// Requests in the kernel (reads and writes).
        var inFlight = 0
        var stopping = false
    }

    /// The tag of the no-op that tells the completion thread to stop.
    private static let stopTag = UInt64.max

    let file: FileBackend
    let table: IORequestTable
    let maxWritesInFlight: Int
    private let ring: IORing
    /// The submission lock: serializes liburing's submission side and guards `State`. Held
    /// across `io_uring_enter`, which queues I/O and does not wait for it.
    private let state: Mutex<State>
    private let exited = DispatchSemaphore(value: 0)
    private let stats: SwapStatistics?

    /// Sets up the ring; throws the kernel's answer when io_uring is unavailable.
    init(file: FileBackend, table: IORequestTable, options: IOEngineOptions, stats: SwapStatistics?) throws(Errno) {
        self.file = file
        self.table = table
        self.stats = stats
        maxWritesInFlight = options.maxWritesInFlight
        // Every request holds a slot, so at most `table.count` entries are ever in the kernel,
        // and the completion queue (twice the entries) cannot overflow.
        ring = try IORing(entries: max(8, table.count))
        state = Mutex(State(queuedWrites: IOSlotQueue(capacity: table.count)))
        let thread = Thread { [self] in completions() }
        thread.name = "userswap-uring"
        thread.start()
    }

    /// Submits the filled request in `slot` (or queues it, for a write over the limit).
    func submit(_ slot: Int) {
        let write = table.request(slot).pointee.write
        let failed: Errno? = state.withLock { s in
            if write {
                if s.writesInFlight >= maxWritesInFlight {
                    s.queuedWrites.push(slot)
                    stats?.count(.ioWritesThrottled)
                    return nil
                }
                s.writesInFlight += 1
            }
            return enterLocked(&s, slot)
        }
        if let failed { finishFailedSubmission(slot, failed) }
    }

    /// Stops the completion thread once every request is done, and waits for it.
    func shutdown() {
        state.withLock { s in
            s.stopping = true
            while !ring.prepareNop(tag: Self.stopTag) { _ = try? ring.submit() }
            _ = try? ring.submit()
        }
        exited.wait()
    }

    /// Prepares and submits `slot`. On failure undoes the counts and returns the error.
    private func enterLocked(_ s: inout State, _ slot: Int) -> Errno? {
        let r = table.request(slot).pointee
        let v = table.vectors(slot)
        var aligned = true
        for i in 0..<r.vectorCount where Int(bitPattern: v[i].iov_base) & (SwapPage.size - 1) != 0 { aligned = false }
        let fd = file.descriptor(aligned: aligned)
        let prepared = ring.prepare(write: r.write, fd: fd, vectors: v, count: r.vectorCount,
                                    offset: Int64(r.page) * Int64(SwapPage.size), tag: UInt64(slot))
        // The queue is empty between calls (each submits what it prepared), so it is never full.
        precondition(prepared, "io_uring submission queue full")
        do {
            _ = try ring.submit()
        } catch {
            if r.write { s.writesInFlight -= 1 }
            return error
        }
        s.inFlight += 1
        return nil
    }

    /// A request the kernel did not take (EAGAIN, ENOMEM, …): do it in this thread instead,
    /// through pwrite/pread, so the caller still gets its outcome.
    private func finishFailedSubmission(_ slot: Int, _ error: Errno) {
        let scratch = IOTransfer.makeScratch()
        defer { scratch.deallocate() }
        IOTransfer.perform(slot, table: table, backend: file, scratch: scratch)
        table.complete(slot)
    }

    private func completions() {
        let scratch = IOTransfer.makeScratch()
        defer { scratch.deallocate() }
        var stopSeen = false
        while true {
            let completion: (tag: UInt64, result: Int32)
            do {
                completion = try ring.wait()
            } catch where error == .interrupted {
                continue
            } catch {
                preconditionFailure("io_uring wait failed: \(error): a UserSwap bug")
            }
            if completion.tag == Self.stopTag {
                stopSeen = true
            } else {
                finish(Int(completion.tag), result: completion.result, scratch: scratch)
            }
            if stopSeen, state.withLock({ $0.inFlight == 0 && $0.queuedWrites.isEmpty }) { break }
        }
        exited.signal()
    }

    /// Records a completion's outcome, submits queued writes the completion made room for, and
    /// completes the slot.
    private func finish(_ slot: Int, result: Int32, scratch: IOTransfer.Scratch) {
        let r = table.request(slot)
        let write = r.pointee.write
        var failedSubmissions: [(Int, Errno)] = []
        state.withLock { s in
            s.inFlight -= 1
            guard write else { return }
            s.writesInFlight -= 1
            while s.writesInFlight < maxWritesInFlight, let next = s.queuedWrites.pop() {
                s.writesInFlight += 1
                if let e = enterLocked(&s, next) { failedSubmissions.append((next, e)) }
            }
        }
        if Int(result) == r.pointee.bytes {
            // Done. A file never consumes its copy.
        } else if result < 0 {
            let pages = r.pointee.page ..< r.pointee.page + r.pointee.bytes / SwapPage.size
            r.pointee.error = file.failure(Errno(rawValue: -result), writing: write, pages: pages)
        } else {
            // Short (end of file, a signal): let pread/pwrite loop over the rest, or say why not.
            IOTransfer.perform(slot, table: table, backend: file, scratch: scratch)
        }
        table.complete(slot)
        for (next, e) in failedSubmissions { finishFailedSubmission(next, e) }
    }
}

// `state` guards the ring's submission side and the counts; the completion side belongs to the
// one completion thread; the rest is immutable.
extension IOUringDriver: @unchecked Sendable {}
