import Glibc
import Synchronization

/// The io_uring engine for a swap file. Submitters put their requests straight into the ring:
/// reads at once; writes only while fewer than `maxWritesInFlight` are in the kernel, the rest
/// in a queue. A read therefore never waits in the device queue behind more than
/// `maxWritesInFlight` write-backs.
///
/// Completions have no thread of their own: a waiter whose request is not done takes the
/// *reaper* role (one at a time) and sleeps in `io_uring_wait_cqe` itself, so the kernel wakes
/// it directly when its I/O ends, as a task sleeping on its bio. The reaper records every
/// completion it takes in its slot, wakes that slot's submitter, and submits the writes a
/// finished write made room for. When its own request is done it hands the role on: it wakes one
/// sleeping waiter whose request is still pending. (A waiter marks itself sleeping before it
/// looks at the role, and the reaper gives the role up before it looks for sleepers — both
/// sequentially consistent — so one of the two always sees the other: nobody sleeps with no
/// reaper.)
///
/// Transfers use the file's `O_DIRECT` descriptor when the buffers are page-aligned (the engine's
/// frames always are), its buffered one otherwise.
final class IOUringDriver {
    private struct State: ~Copyable {
        var queuedWrites: IOSlotQueue
        var writesInFlight = 0
    }

    let file: FileBackend
    let table: IORequestTable
    let maxWritesInFlight: Int
    private let ring: IORing
    /// The submission lock: serializes liburing's submission side and guards `State`. Held
    /// across `io_uring_enter`'s submission, which queues I/O and does not wait for it.
    private let state: Mutex<State>
    /// Someone is reaping completions (only the holder calls `ring.wait`).
    private let reaping = Atomic<Bool>(false)
    /// Buffers for redoing a short transfer through pread/pwrite; used only by the reaper.
    private let scratch: IOTransfer.Scratch
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
        state = Mutex(State(queuedWrites: IOSlotQueue(capacity: table.count)), rank: .ioSubmission)
        scratch = IOTransfer.makeScratch()
    }

    deinit { scratch.deallocate() }

    /// Submits the filled request in `slot` (or queues it, for a write over the limit).
    func submit(_ slot: Int) {
        let write = table.request(slot).pointee.write
        state.withLock { s in
            if write {
                if s.writesInFlight >= maxWritesInFlight {
                    s.queuedWrites.push(slot)
                    stats?.count(.ioWritesThrottled)
                    return
                }
                s.writesInFlight += 1
            }
            enterUnderSubmissionLock(slot)
        }
    }

    /// Submits the filled read requests in `slots` with one `io_uring_enter`.
    func submit(_ slots: [Int]) {
        state.withLock { _ in
            for slot in slots {
                assert(!table.request(slot).pointee.write, "a batch holds reads only")
                prepareUnderSubmissionLock(slot)
            }
            enterUnderSubmissionLock()
        }
    }

    /// Waits until `slot` is done, reaping completions when nobody else does.
    func wait(_ slot: Int) {
        while !table.isDone(slot) {
            if reaping.compareExchange(expected: false, desired: true, ordering: .sequentiallyConsistent).exchanged {
                reap(until: slot)
                reaping.store(false, ordering: .sequentiallyConsistent)
                // Hand the role on to a sleeper still waiting, if any.
                _ = table.kickOneWaiter()
                return
            }
            guard table.markWaiting(slot) else { continue }
            // The reaper may have left between our look and our mark: look again.
            if !reaping.load(ordering: .sequentiallyConsistent) { continue }
            table.sleep(slot)
        }
    }

    /// As the reaper: takes completions until `slot`'s is among them.
    private func reap(until slot: Int) {
        while !table.isDone(slot) {
            let completion: (tag: UInt64, result: Int32)
            do {
                completion = try ring.wait()
            } catch  where error == .interrupted {
                continue
            } catch {
                trap("io_uring wait failed: \(error): a UserSwap bug")
            }
            finish(Int(completion.tag), result: completion.result)
            // Take whatever else is ready without another system call.
            while let more = ring.poll() { finish(Int(more.tag), result: more.result) }
        }
    }

    /// Prepares and submits `slot`. Caller holds the submission lock.
    private func enterUnderSubmissionLock(_ slot: Int) {
        prepareUnderSubmissionLock(slot)
        enterUnderSubmissionLock()
    }

    /// Puts `slot`'s request into the submission queue. Caller holds the submission lock.
    private func prepareUnderSubmissionLock(_ slot: Int) {
        table.claim(slot)
        let r = table.request(slot).pointee
        let v = table.vectors(slot)
        var aligned = true
        for i in 0..<r.vectorCount where Int(bitPattern: v[i].iov_base) & (SwapPage.size - 1) != 0 { aligned = false }
        let fd = file.descriptor(aligned: aligned)
        let prepared = ring.prepare(
            write: r.write, fd: fd, vectors: v, count: r.vectorCount,
            offset: Int64(r.page) * Int64(SwapPage.size), tag: UInt64(slot))
        // The queue is empty between calls (each submits what it prepared), and a batch holds
        // at most one entry per request slot, fewer than the queue's entries: never full.
        require(prepared, "io_uring submission queue full")
    }

    /// Hands every prepared entry to the kernel (one `io_uring_enter`). Caller holds the
    /// submission lock.
    private func enterUnderSubmissionLock() {
        // Once prepared, the entry is in the ring for the kernel to take at the next enter,
        // failed or not: so a failure (EAGAIN: the kernel is short of request memory) is
        // retried, never answered by doing the transfer here too (it would then run twice).
        // A backoff on purpose: no event says when the kernel has request memory again.
        var delay: UInt32 = 50
        var waited: UInt32 = 0
        while true {
            do {
                _ = try ring.submit()
                return
            } catch {
                require(waited < 10_000_000, "io_uring submission failed for 10 s: \(error)")
                usleep(delay)  // A backoff on purpose: see above
                waited += delay
                delay = min(delay * 2, 100_000)
            }
        }
    }

    /// Records a completion's outcome, submits queued writes the completion made room for, and
    /// completes the slot. Called by the reaper only.
    private func finish(_ slot: Int, result: Int32) {
        table.claim(slot)
        let r = table.request(slot)
        let write = r.pointee.write
        if write {
            state.withLock { s in
                s.writesInFlight -= 1
                while s.writesInFlight < maxWritesInFlight, let next = s.queuedWrites.pop() {
                    s.writesInFlight += 1
                    enterUnderSubmissionLock(next)
                }
            }
        }
        if Int(result) == r.pointee.bytes {
            // Done. A file never consumes its copy.
        } else if result < 0 {
            let pages = r.pointee.page..<r.pointee.page + r.pointee.bytes / SwapPage.size
            r.pointee.error = file.failure(Errno(rawValue: -result), writing: write, pages: pages)
        } else {
            // Short (end of file, a signal): let pread/pwrite loop over the rest, or say why not.
            IOTransfer.perform(slot, table: table, backend: file, scratch: scratch)
        }
        table.complete(slot)
    }
}

// `state` guards the ring's submission side and the counts; the completion side and `scratch`
// belong to the reaper (one thread at a time, by the `reaping` flag); the rest is immutable.
extension IOUringDriver: @unchecked Sendable {}
