import CUserSwap
import Glibc
import Synchronization

/// One request's description, filled by the submitter before it hands the slot to a driver, and
/// its outcome, filled by the driver before it marks the slot done.
struct IORequest {
    var write = false
    /// First device page.
    var page = 0
    /// Bytes the iovecs describe.
    var bytes = 0
    var vectorCount = 0
    /// A read whose backend gave up its copy (an exclusive tier load).
    var consumed = false
    var error: SwapError?
}

/// The preallocated request slots of an I/O engine: per slot, a completion word (a futex), the
/// request, and room for its iovecs. No allocation per request: slots come from a free stack and
/// go back to it when their submitter has read the outcome.
///
/// A slot's life: `acquire` (submitter owns it) → filled → published to a driver (a queue under
/// a mutex, or an io_uring submission: both order the fill before the driver reads it) → the
/// driver writes the outcome and `complete`s it (release) → the submitter's `wait` sees done
/// (acquire), reads the outcome, and `release`s the slot.
final class IORequestTable {
    /// The most iovecs one request holds: 1 MiB of pages, the transfer at which the disk
    /// reaches its sequential bandwidth (a readahead window, a background reclaim run).
    static let maxVectors = 256

    static let free: UInt32 = 0
    static let pending: UInt32 = 1
    /// Pending, and its submitter is asleep on the word (the completer must wake it).
    static let pendingWithWaiter: UInt32 = 2
    static let done: UInt32 = 3
    /// Pending; its sleeping submitter was woken to take over reaping (io_uring).
    static let kicked: UInt32 = 4

    let count: Int
    private let states: _UnsafeAtomicArray<UInt32>
    private let requests: UnsafeMutablePointer<IORequest>
    private let vectorStorage: UnsafeMutablePointer<iovec>
    private let freeSlots: Mutex<FreeStack>

    /// A stack of free slot numbers in preallocated storage.
    struct FreeStack: ~Copyable {
        let storage: UnsafeMutablePointer<Int32>
        var top: Int
    }

    init(count: Int) {
        self.count = count
        states = _UnsafeAtomicArray(count: count, initialValue: Self.free)
        requests = .allocate(capacity: count)
        requests.initialize(repeating: IORequest(), count: count)
        // 4 KiB of iovecs per slot (1 MiB for 256 slots) in a private anonymous mapping, which
        // the kernel backs with a zeroed page at the first write of each: only the pages of the
        // slots in use become resident, and the free stack hands out the same few low slots
        // again and again. (`calloc` would not promise it: once glibc's mmap threshold has grown
        // past the size, it takes the block from a heap and writes every byte.)
        let vectorBytes = count * Self.maxVectors * MemoryLayout<iovec>.stride
        do {
            let base = try Syscalls.mmap(
                length: vectorBytes, protection: PROT_READ | PROT_WRITE,
                flags: MAP_PRIVATE | MAP_ANONYMOUS | cus_MAP_NORESERVE())
            // Sound: fresh anonymous memory is zero, a valid `iovec` (null base, length 0).
            vectorStorage = base.bindMemory(to: iovec.self, capacity: count * Self.maxVectors)
        } catch {
            // As any allocation failure in Swift: nothing sensible to do but stop.
            trap("cannot map \(vectorBytes) bytes for the iovecs of \(count) I/O request slots: \(error)")
        }
        let stack = UnsafeMutablePointer<Int32>.allocate(capacity: count)
        for i in 0..<count { stack[i] = Int32(count - 1 - i) }
        freeSlots = Mutex(FreeStack(storage: stack, top: count), rank: .ioRequestSlots)
    }

    deinit {
        requests.deinitialize(count: count)
        requests.deallocate()
        Syscalls.munmap(UnsafeMutableRawPointer(vectorStorage), length: count * Self.maxVectors * MemoryLayout<iovec>.stride)
        freeSlots.withLock { $0.storage.deallocate() }
    }

    /// A free slot, or nil when every slot is in use (the caller then transfers by itself:
    /// waiting for a slot could wait on requests the caller itself has not collected yet).
    @inline(__always)
    func acquire() -> Int? {
        let slot: Int? = freeSlots.withLock { s in
            guard s.top > 0 else { return nil }
            s.top -= 1
            return Int(s.storage[s.top])
        }
        if let slot {
            // Acquiring: pairs with `release`, so the previous owner's last accesses to the
            // request happen before ours (the free stack's mutex orders them too, but the
            // thread sanitizer cannot see through Synchronization.Mutex).
            let old = states[slot].pointee.exchange(Self.pending, ordering: .acquiring)
            assert(old == Self.free, "request slot \(slot) handed out twice")
        }
        return slot
    }

    /// Gives a collected slot back.
    @inline(__always)
    func release(_ slot: Int) {
        requests[slot].error = nil
        states[slot].pointee.store(Self.free, ordering: .releasing)
        freeSlots.withLock { s in
            s.storage[s.top] = Int32(slot)
            s.top += 1
        }
    }

    /// The request in `slot`. Only its current owner (submitter before publication, driver
    /// until completion, submitter after `wait`) touches it.
    @inline(__always)
    func request(_ slot: Int) -> UnsafeMutablePointer<IORequest> { requests + slot }

    /// The iovecs of `slot` (`maxVectors` of them).
    @inline(__always)
    func vectors(_ slot: Int) -> UnsafeMutablePointer<iovec> { vectorStorage + slot * Self.maxVectors }

    /// Fills `slot` with a transfer of `buffers` at `page`.
    @inline(__always)
    func fill(_ slot: Int, write: Bool, page: Int, buffers: UnsafeBufferPointer<UnsafeMutableRawBufferPointer>) {
        require(buffers.count <= Self.maxVectors, "a request of \(buffers.count) buffers; at most \(Self.maxVectors)")
        let v = vectors(slot)
        var bytes = 0
        for i in 0..<buffers.count {
            require(buffers[i].count % SwapPage.size == 0, "a transfer of \(buffers[i].count) bytes is not whole pages")
            v[i] = iovec(iov_base: buffers[i].baseAddress, iov_len: buffers[i].count)
            bytes += buffers[i].count
        }
        let r = request(slot)
        r.pointee.write = write
        r.pointee.page = page
        r.pointee.bytes = bytes
        r.pointee.vectorCount = buffers.count
        r.pointee.consumed = false
        r.pointee.error = nil
        // Publishes the request to the driver that `claim`s it (the hand-over itself, a mutex
        // or an io_uring submission, orders it too, invisibly to the thread sanitizer).
        states[slot].pointee.store(Self.pending, ordering: .releasing)
    }

    /// Called by a driver before it reads a request handed to it: pairs with `fill`.
    @inline(__always)
    func claim(_ slot: Int) {
        let s = states[slot].pointee.load(ordering: .acquiring)
        assert(s == Self.pending || s == Self.pendingWithWaiter || s == Self.kicked, "request slot \(slot) claimed in state \(s)")
    }

    /// Marks `slot` done (its outcome is written) and wakes its submitter if it sleeps.
    @inline(__always)
    func complete(_ slot: Int) {
        if states[slot].pointee.exchange(Self.done, ordering: .releasing) == Self.pendingWithWaiter {
            _ = cus_futex_wake(rawWord(slot), Int32.max)
        }
    }

    /// Whether `slot` is done (acquire: its outcome is then visible).
    @inline(__always)
    func isDone(_ slot: Int) -> Bool { states[slot].pointee.load(ordering: .acquiring) == Self.done }

    /// Sleeps until `slot` is done. Every slot handed to a driver is completed, also on error and
    /// at shutdown (drivers drain their queues before they stop), so this always returns.
    func wait(_ slot: Int) {
        var spins = 0
        while true {
            let s = states[slot].pointee.load(ordering: .acquiring)
            if s == Self.done { return }
            // A short spin: a pool worker on a memory backend finishes in a microsecond or two;
            // a disk read takes tens, better slept through.
            if spins < 64 {
                spins += 1
                continue
            }
            if s == Self.pending,
                !states[slot].pointee.compareExchange(
                    expected: Self.pending, desired: Self.pendingWithWaiter,
                    ordering: .relaxed  // Relaxed: only announces a waiter; the state is re-read acquiring after the wait
                ).exchanged
            {
                continue
            }
            yieldPoint(.blocking)
            _ = cus_futex_wait(rawWord(slot), Self.pendingWithWaiter, -1)
        }
    }

    /// For the io_uring driver's waiters: marks `slot` as having a sleeping submitter. False if
    /// the slot is done (or changed: the caller looks again).
    @inline(__always)
    func markWaiting(_ slot: Int) -> Bool {
        let s = states[slot].pointee.load(ordering: .acquiring)
        if s == Self.pendingWithWaiter { return true }
        guard s == Self.pending || s == Self.kicked else { return false }
        return states[slot].pointee.compareExchange(
            expected: s, desired: Self.pendingWithWaiter,
            ordering: .sequentiallyConsistent
        ).exchanged
    }

    /// Sleeps while `slot` is pending with its waiter marked (returns at once if it changed).
    @inline(__always)
    func sleep(_ slot: Int) {
        yieldPoint(.blocking)
        _ = cus_futex_wait(rawWord(slot), Self.pendingWithWaiter, -1)
    }

    /// Wakes one sleeping submitter whose request is not done, so that it takes over reaping
    /// completions (io_uring). Returns whether there was one.
    func kickOneWaiter() -> Bool {
        for slot in 0..<count {
            if states[slot].pointee.load(ordering: .sequentiallyConsistent) == Self.pendingWithWaiter,
                states[slot].pointee.compareExchange(
                    expected: Self.pendingWithWaiter, desired: Self.kicked,
                    ordering: .sequentiallyConsistent
                ).exchanged
            {
                _ = cus_futex_wake(rawWord(slot), Int32.max)
                return true
            }
        }
        return false
    }

    @inline(__always)
    private func rawWord(_ slot: Int) -> UnsafeMutablePointer<UInt32> {
        // Sound: Atomic<UInt32> has a UInt32's layout; the kernel only compares and sleeps.
        UnsafeMutableRawPointer(states[slot]).assumingMemoryBound(to: UInt32.self)
    }
}

// The free stack is behind its mutex; each request and its iovecs have one owner at a time
// (see the type's comment), handed over by the completion word's release/acquire or a driver's
// mutex.
extension IORequestTable: @unchecked Sendable {}
