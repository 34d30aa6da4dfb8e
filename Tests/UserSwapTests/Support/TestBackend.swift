import Foundation
import Synchronization

@testable import UserSwap

/// A memory backend that counts reads per page, can slow reads down to widen race windows, and
/// can fail the next reads or writes on demand.
final class TestBackend: SwapBackend, @unchecked Sendable {
    let memory: MemoryBackend
    let readsPerPage = Mutex([Int: Int]())
    let failReads = Atomic<Int>(0)
    let failWrites = Atomic<Int>(0)
    /// Microseconds each read sleeps before transferring.
    let readDelayMicros = Atomic<Int>(0)
    /// While true, reads wait before transferring until `releaseReads()`: a read kept in flight
    /// for as long as a test needs, on a machine however loaded (a delay can run out first).
    private let readsHeld = NSCondition()
    nonisolated(unsafe) private var holding = false

    func holdReads() {
        readsHeld.lock()
        holding = true
        readsHeld.unlock()
    }

    func releaseReads() {
        readsHeld.lock()
        holding = false
        readsHeld.broadcast()
        readsHeld.unlock()
    }

    private func waitWhileHeld() {
        readsHeld.lock()
        while holding { readsHeld.wait() }
        readsHeld.unlock()
    }
    /// Reads in the backend now, and the most there were at once.
    let readsInFlight = Atomic<Int>(0)
    let maxReadsInFlight = Atomic<Int>(0)

    init(pageCount: Int) { memory = MemoryBackend(pageCount: pageCount) }

    var pageCount: Int { memory.pageCount }

    func read(into buffer: UnsafeMutableRawBufferPointer, atPage page: Int) throws(SwapError) {
        waitWhileHeld()
        enterRead()
        defer { readsInFlight.subtract(1, ordering: .relaxed) }
        let delay = readDelayMicros.load(ordering: .relaxed)
        if delay > 0 { usleep(UInt32(delay)) }
        if failReads.load(ordering: .relaxed) > 0, failReads.wrappingSubtract(1, ordering: .relaxed).oldValue > 0 {
            throw SwapError(.ioError, "injected read error at page \(page)", errno: .ioError)
        }
        readsPerPage.withLock { r in
            for p in page..<(page + buffer.count / SwapPage.size) { r[p, default: 0] += 1 }
        }
        try memory.read(into: buffer, atPage: page)
    }

    func read(into buffers: UnsafeBufferPointer<UnsafeMutableRawBufferPointer>, atPage page: Int) throws(SwapError) {
        let pages = buffers.reduce(0) { $0 + $1.count / SwapPage.size }
        waitWhileHeld()
        enterRead()
        defer { readsInFlight.subtract(1, ordering: .relaxed) }
        let delay = readDelayMicros.load(ordering: .relaxed)
        if delay > 0 { usleep(UInt32(delay)) }
        if failReads.load(ordering: .relaxed) > 0, failReads.wrappingSubtract(1, ordering: .relaxed).oldValue > 0 {
            throw SwapError(.ioError, "injected read error at page \(page)", errno: .ioError)
        }
        readsPerPage.withLock { r in for p in page..<(page + pages) { r[p, default: 0] += 1 } }
        try memory.read(into: buffers, atPage: page)
    }

    func write(_ buffer: UnsafeRawBufferPointer, atPage page: Int) throws(SwapError) {
        if failWrites.load(ordering: .relaxed) > 0, failWrites.wrappingSubtract(1, ordering: .relaxed).oldValue > 0 {
            throw SwapError(.ioError, "injected write error at page \(page)", errno: .ioError)
        }
        try memory.write(buffer, atPage: page)
    }

    /// Counts a read in flight and raises the maximum.
    private func enterRead() {
        let now = readsInFlight.add(1, ordering: .relaxed).newValue
        var seen = maxReadsInFlight.load(ordering: .relaxed)
        while now > seen {
            let (done, current) = maxReadsInFlight.compareExchange(expected: seen, desired: now, ordering: .relaxed)
            if done { break }
            seen = current
        }
    }

    var totalReads: Int { readsPerPage.withLock { $0.values.reduce(0, +) } }
    var maxReadsOfOnePage: Int { readsPerPage.withLock { $0.values.max() ?? 0 } }
    func resetReads() { readsPerPage.withLock { $0.removeAll() } }
}

/// Runs `body(i)` on `count` real threads released together, and waits for all of them.
/// (Dispatch's concurrentPerform uses one thread per core; races need oversubscription.)
func runThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let ready = Atomic<Int>(0)
    let done = DispatchSemaphore(value: 0)
    for i in 0..<count {
        let t = Thread {
            ready.add(1, ordering: .acquiringAndReleasing)
            while ready.load(ordering: .acquiring) < count { sched_yield() }
            body(i)
            done.signal()
        }
        t.start()
    }
    for _ in 0..<count { done.wait() }
}

/// A space over one `TestBackend` device.
/// Without a background reclaimer unless asked: tests that count reads and writes must not have
/// a thread evicting pages behind their back. Without encryption: the tests look at the engine's
/// own traffic on the device they gave it (sealing is tested in the Tiers suites).
func makeSpace(
    memoryPages: Int, swapPages: Int = 1 + 4 * 512, sync: SwapInSync = .swapCache,
    policy: ReclaimPolicy = .frequency, backgroundReclaim: Bool = false
) throws -> (SwapSpace, TestBackend) {
    let backend = TestBackend(pageCount: swapPages)
    let space = try SwapSpace(
        .init(
            memory: memoryPages * SwapPage.size, devices: [.backend(backend)], sync: sync,
            reclaimPolicy: policy, backgroundReclaim: backgroundReclaim, encryption: .none))
    return (space, backend)
}

/// The byte pattern test pages carry: page `p` of generation `g`.
func fill(_ bytes: UnsafeMutableRawBufferPointer, page: Int, generation: Int = 0) {
    let words = bytes.bindMemory(to: UInt64.self)
    for i in 0..<words.count { words[i] = UInt64(page) &* 0x9e37_79b9 &+ UInt64(i) &+ UInt64(generation) << 48 }
}

func matches(_ bytes: UnsafeMutableRawBufferPointer, page: Int, generation: Int = 0) -> Bool {
    let words = bytes.bindMemory(to: UInt64.self)
    for i in 0..<words.count where words[i] != UInt64(page) &* 0x9e37_79b9 &+ UInt64(i) &+ UInt64(generation) << 48 {
        return false
    }
    return true
}

/// The swap cache and the legacy bypass protocol (which sleeps the longest), the legacy one with
/// a short tick so tests stay fast.
let bothProtocols: [SwapInSync] = [.swapCache, .hasCacheBitBypass(retryAfter: .microseconds(200))]

/// Every swap-in protocol, the legacy ones with a short tick.
let allProtocols: [SwapInSync] =
    bothProtocols + [
        .hasCacheBit(tick: .microseconds(200)),
        .hasCacheBitWaitQueue(tick: .microseconds(200)),
    ]
