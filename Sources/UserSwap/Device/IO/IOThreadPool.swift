import CUserSwap
import Foundation
import Synchronization

/// The thread-pool engine: a few worker threads take requests from two queues and call the
/// backend (pread/pwrite for a file). Reads first: a worker takes a write only when no read is
/// queued and fewer than `maxWritesInFlight` writes are running, so at least
/// `workers - maxWritesInFlight` workers are always free for a fault's read, however many
/// write-backs are queued.
final class IOThreadPool {
    private struct Queues: ~Copyable {
        var reads: IOSlotQueue
        var writes: IOSlotQueue
        var writesRunning = 0
        var stopping = false
    }

    let backend: any SwapBackend
    let table: IORequestTable
    let maxWritesInFlight: Int
    let workers: Int
    private let queues: Mutex<Queues>
    /// Bumped on every submission; idle workers sleep on it (a futex), so a submission made
    /// between a worker's look at the queues and its sleep makes the sleep return at once.
    private let work: UnsafeMutablePointer<Atomic<UInt32>>
    private let sleepers = Atomic<Int>(0)
    private let exited = DispatchSemaphore(value: 0)
    private let stats: SwapStatistics?

    init(backend: any SwapBackend, table: IORequestTable, options: IOEngineOptions, stats: SwapStatistics?) {
        self.backend = backend
        self.table = table
        self.stats = stats
        maxWritesInFlight = options.maxWritesInFlight
        workers = options.workers
        queues = Mutex(Queues(reads: IOSlotQueue(capacity: table.count), writes: IOSlotQueue(capacity: table.count)), rank: .ioSubmission)
        work = .allocate(capacity: 1)
        work.initialize(to: Atomic(0))
        for i in 0..<workers {
            // Unowned, and the exit reported after `run()` returns: a worker that holds the pool
            // (and so the backend, perhaps an open swap file) after `shutdown()` returned would
            // release it later, on its own thread.
            let exited = self.exited
            let thread = Thread { [unowned self] in
                self.run()
                exited.signal()
            }
            thread.name = "userswap-io-\(i)"
            thread.start()
        }
    }

    deinit {
        work.deinitialize(count: 1)
        work.deallocate()
    }

    /// Queues the filled request in `slot`.
    func submit(_ slot: Int) {
        let write = table.request(slot).pointee.write
        let throttled = queues.withLock { q in
            if write {
                q.writes.push(slot)
                return q.writesRunning >= maxWritesInFlight
            }
            q.reads.push(slot)
            return false
        }
        if throttled { stats?.count(.ioWritesThrottled) }
        signal(all: false)
    }

    /// Queues the filled read requests in `slots` at once, and wakes as many workers as they
    /// can use.
    func submit(_ slots: [Int]) {
        queues.withLock { q in
            for slot in slots {
                assert(!table.request(slot).pointee.write, "a batch holds reads only")
                q.reads.push(slot)
            }
        }
        signal(all: slots.count > 1)
    }

    /// Stops the workers once every queued request is done, and waits for them.
    func shutdown() {
        queues.withLock { $0.stopping = true }
        signal(all: true)
        for _ in 0..<workers { exited.wait() }
    }

    private func signal(all: Bool) {
        work.pointee.wrappingAdd(1, ordering: .sequentiallyConsistent)
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
            _ = cus_futex_wake(rawWork, all ? Int32.max : 1)
        }
    }

    private func run() {
        let scratch = IOTransfer.makeScratch()
        defer { scratch.deallocate() }
        var wroteLast = false
        while true {
            let seen = work.pointee.load(ordering: .sequentiallyConsistent)
            let (next, stop): (Int?, Bool) = queues.withLock { q in
                if wroteLast { q.writesRunning -= 1 }
                if let r = q.reads.pop() { return (r, false) }
                if q.writesRunning < maxWritesInFlight, let w = q.writes.pop() {
                    q.writesRunning += 1
                    return (w, false)
                }
                return (nil, q.stopping && q.writes.isEmpty)
            }
            wroteLast = false
            if let slot = next {
                table.claim(slot)
                wroteLast = table.request(slot).pointee.write
                IOTransfer.perform(slot, table: table, backend: backend, scratch: scratch)
                table.complete(slot)
                // A throttled write may go now: this worker takes it on its next turn.
                continue
            }
            if stop {
                // Others may sleep behind a throttled write this worker could not take.
                signal(all: true)
                break
            }
            sleepers.add(1, ordering: .sequentiallyConsistent)
            _ = cus_futex_wait(rawWork, seen, -1)
            sleepers.subtract(1, ordering: .sequentiallyConsistent)
        }
    }

    private var rawWork: UnsafeMutablePointer<UInt32> {
        // Sound: Atomic<UInt32> has a UInt32's layout; the kernel only compares and sleeps.
        UnsafeMutableRawPointer(work).assumingMemoryBound(to: UInt32.self)
    }
}

// The queues are behind their mutex; `work` and `sleepers` are atomics; the rest is immutable.
extension IOThreadPool: @unchecked Sendable {}
