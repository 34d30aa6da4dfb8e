import Glibc
import Synchronization
import UserSwap

/// A backend that wraps another and makes it fail on purpose, the way a failing disk does: I/O
/// errors, a full disk, short and torn transfers, latency spikes, and a device that goes away.
/// The kernel's counterparts are `CONFIG_FAIL_MAKE_REQUEST` and dm-flakey/dm-dust; this one exists
/// so tests can show what the engine does with each fault.
///
/// Faults are added as rules: a fault, the operation it hits, and when (the Nth call, a page
/// range, a seeded probability, or every call), optionally a limited number of times. The first
/// rule that matches a call decides it; every call counts towards every rule's `.call(n)`.
///
/// ```swift
/// let flaky = FaultInjectingBackend(MemoryBackend(pageCount: 1 + 512), seed: 42)
/// flaky.inject(.ioError, on: .read, when: .call(3))             // the third read from now fails
/// flaky.inject(.short(), on: .write, when: .probability(0.01))  // 1 % of writes are torn
/// ```
///
/// The protocol promises that a backend retries short transfers itself and reports only success
/// or an error, so a short transfer here is what a retry that then fails looks like: part of the
/// bytes moved (into the caller's buffer for a read; onto the device, mid-page, for a torn
/// write), then EIO.
public final class FaultInjectingBackend: SwapBackend {
    public enum Operation: Sendable, Hashable, CaseIterable { case read, write }

    public enum Fault: Sendable, Hashable {
        /// EIO; nothing moves.
        case ioError
        /// ENOSPC (a thin-provisioned or sparse store ran out); nothing moves. Writes only: on a
        /// read it is an EIO.
        case noSpace
        /// The first `bytes` of the transfer move (half of it, mid-page, when nil), then EIO. A
        /// short write is torn: the device holds the new bytes up to the cut and the old after.
        case short(bytes: Int? = nil)
        /// The transfer succeeds after a sleep of this long.
        case latency(Duration)
        /// The device goes away: this call and every later one, discards included, fail with
        /// ENODEV until `reattach()`.
        case disappear
        /// The transfer succeeds, but byte `byte` (0…4095) of every page it moves is inverted on
        /// the way (into the caller's buffer for a read, onto the device for a write): the silent
        /// corruption of a store without checksums, which only a check of the data catches.
        case corrupt(byte: Int = 0)
    }

    public enum Trigger: Sendable, Hashable {
        /// The `n`th call of the rule's operation after the rule was added (1 is the next one).
        case call(Int)
        /// Every call that touches one of these device pages.
        case pages(Range<Int>)
        /// Each call with probability `p`, drawn from the backend's seeded generator.
        case probability(Double)
        /// Every call.
        case always
    }

    /// What was injected, per operation.
    public enum Counter: Sendable, Hashable, CaseIterable {
        case ioErrors, noSpace, shortTransfers, latencySpikes
        /// Transfers whose pages were silently corrupted.
        case corruptions
        /// Calls refused because the device was gone (the call that made it go included).
        case goneCalls
    }

    private struct Rule {
        let fault: Fault
        let operation: Operation
        let trigger: Trigger
        /// Firings left; nil for no limit.
        var remaining: Int?
        /// Calls of `operation` since the rule was added.
        var calls = 0
    }

    private struct State {
        var rules: [Rule] = []
        var gone = false
        /// SplitMix64 state for `.probability`.
        var random: UInt64
        var counters: [Operation: [Counter: Int]] = [:]
        var calls: [Operation: Int] = [:]
    }

    /// The backend that does the real transfers.
    public let inner: any SwapBackend
    /// Every field; held only to decide a call's fate, never across a transfer or a sleep.
    private let state: Mutex<State>

    /// Wraps `inner`; `seed` drives the `.probability` triggers, so a run replays.
    public init(_ inner: any SwapBackend, seed: UInt64 = 0) {
        self.inner = inner
        state = Mutex(State(random: seed))
    }

    public var pageCount: Int { inner.pageCount }

    // MARK: Rules

    /// Adds a rule: `fault` hits `operation` when `trigger` says, at most `times` times (a
    /// `.call(n)` rule fires once unless told otherwise; the others until removed).
    public func inject(_ fault: Fault, on operation: Operation, when trigger: Trigger, times: Int? = nil) {
        if case .corrupt(let byte) = fault { require((0..<SwapPage.size).contains(byte), "byte \(byte) outside a page") }
        if case .probability(let p) = trigger { require(p >= 0 && p <= 1, "probability \(p) outside 0...1") }
        if case .call(let n) = trigger { require(n >= 1, "calls count from 1") }
        var limit = times
        if case .call = trigger, limit == nil { limit = 1 }
        state.withLock { $0.rules.append(Rule(fault: fault, operation: operation, trigger: trigger, remaining: limit)) }
    }

    /// Removes every rule; a device that went away stays away (see `reattach()`).
    public func removeAllFaults() {
        state.withLock { $0.rules.removeAll() }
    }

    /// Makes the device go away now: every call from here on fails with ENODEV.
    public func disappear() {
        state.withLock { $0.gone = true }
    }

    /// Brings a device that went away back, with the contents it had (a cable plugged back in).
    public func reattach() {
        state.withLock { $0.gone = false }
    }

    public var isGone: Bool { state.withLock { $0.gone } }

    /// Faults of kind `counter` injected into `operation`s so far.
    public func injected(_ counter: Counter, on operation: Operation) -> Int {
        state.withLock { $0.counters[operation]?[counter] ?? 0 }
    }

    /// Every fault injected so far, latency spikes included.
    public var injectedTotal: Int {
        state.withLock { s in s.counters.values.reduce(0) { $0 + $1.values.reduce(0, +) } }
    }

    /// Calls of `operation` that reached this backend, faulty or not.
    public func calls(_ operation: Operation) -> Int { state.withLock { $0.calls[operation] ?? 0 } }

    // MARK: Transfers

    public func read(into buffer: UnsafeMutableRawBufferPointer, atPage page: Int) throws(SwapError) {
        switch try decide(.read, pages: page..<page + buffer.count / SwapPage.size) {
        case .transfer: try inner.read(into: buffer, atPage: page)
        case .short(let cut): try shortRead(into: [buffer], atPage: page, cut: cut)
        case .corrupt(let byte):
            try inner.read(into: buffer, atPage: page)
            Self.invert(byte: byte, [buffer])
        }
    }

    public func write(_ buffer: UnsafeRawBufferPointer, atPage page: Int) throws(SwapError) {
        switch try decide(.write, pages: page..<page + buffer.count / SwapPage.size) {
        case .transfer: try inner.write(buffer, atPage: page)
        case .short(let cut): try tornWrite([buffer], atPage: page, cut: cut)
        case .corrupt(let byte): try corruptWrite([buffer], atPage: page, byte: byte)
        }
    }

    public func read(into buffers: UnsafeBufferPointer<UnsafeMutableRawBufferPointer>, atPage page: Int) throws(SwapError) {
        let bytes = buffers.reduce(0) { $0 + $1.count }
        switch try decide(.read, pages: page..<page + bytes / SwapPage.size) {
        case .transfer: try inner.read(into: buffers, atPage: page)
        case .short(let cut): try shortRead(into: Array(buffers), atPage: page, cut: cut)
        case .corrupt(let byte):
            try inner.read(into: buffers, atPage: page)
            Self.invert(byte: byte, Array(buffers))
        }
    }

    public func write(_ buffers: UnsafeBufferPointer<UnsafeRawBufferPointer>, atPage page: Int) throws(SwapError) {
        let bytes = buffers.reduce(0) { $0 + $1.count }
        switch try decide(.write, pages: page..<page + bytes / SwapPage.size) {
        case .transfer: try inner.write(buffers, atPage: page)
        case .short(let cut): try tornWrite(Array(buffers), atPage: page, cut: cut)
        case .corrupt(let byte): try corruptWrite(Array(buffers), atPage: page, byte: byte)
        }
    }

    public func forget(pages: Range<Int>) { inner.forget(pages: pages) }

    public func discard(pages: Range<Int>) throws(SwapError) {
        if isGone {
            count(.goneCalls, on: .write)
            throw Self.error(Self.noDevice, "discard", pages)
        }
        try inner.discard(pages: pages)
    }

    // MARK: Helpers

    private enum Decision { case transfer, short(cut: Int), corrupt(byte: Int) }

    /// Counts the call against every rule, picks the first that fires, and either throws its
    /// error, sleeps, or says how much of the transfer to do. Sleeps outside the lock.
    private func decide(_ op: Operation, pages: Range<Int>) throws(SwapError) -> Decision {
        let fault: Fault? = state.withLock { s in
            s.calls[op, default: 0] += 1
            var chosen: Fault?
            for i in s.rules.indices where s.rules[i].operation == op {
                s.rules[i].calls += 1
                guard chosen == nil, s.rules[i].remaining.map({ $0 > 0 }) ?? true else { continue }
                let fires: Bool
                switch s.rules[i].trigger {
                case .call(let n): fires = s.rules[i].calls == n
                case .pages(let r): fires = r.overlaps(pages)
                case .probability(let p): fires = Self.uniform(&s.random) < p
                case .always: fires = true
                }
                if fires {
                    chosen = s.rules[i].fault
                    s.rules[i].remaining = s.rules[i].remaining.map { $0 - 1 }
                }
            }
            if chosen == .disappear { s.gone = true }
            if s.gone { chosen = .disappear }
            if let chosen { s.counters[op, default: [:]][Self.counter(chosen, op), default: 0] += 1 }
            return chosen
        }
        let what = op == .read ? "read" : "write"
        switch fault {
        case nil:
            return .transfer
        case .ioError:
            throw Self.error(.ioError, what, pages)
        case .noSpace:
            throw Self.error(op == .write ? .noSpace : .ioError, what, pages)
        case .disappear:
            throw Self.error(Self.noDevice, what, pages)
        case .latency(let d):
            Self.sleep(d)
            return .transfer
        case .short(let bytes):
            let total = pages.count * SwapPage.size
            return .short(cut: min(max(bytes ?? total / 2, 0), total - 1))
        case .corrupt(let byte):
            return .corrupt(byte: byte)
        }
    }

    /// Inverts byte `byte` of every page in `buffers` (each a whole number of pages).
    private static func invert(byte: Int, _ buffers: [UnsafeMutableRawBufferPointer]) {
        for b in buffers {
            for offset in stride(from: byte, to: b.count, by: SwapPage.size) { b[offset] = ~b[offset] }
        }
    }

    /// Writes a copy of the caller's pages with byte `byte` of each inverted; the caller's
    /// buffers stay as they were, as a corrupting store leaves them.
    private func corruptWrite(_ buffers: [UnsafeRawBufferPointer], atPage page: Int, byte: Int) throws(SwapError) {
        let total = buffers.reduce(0) { $0 + $1.count }
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: total, alignment: SwapPage.size)
        defer { scratch.deallocate() }
        var offset = 0
        for b in buffers {
            // In bounds: the buffers' sizes add up to total = scratch.count.
            (scratch.baseAddress! + offset).copyMemory(from: b.baseAddress!, byteCount: b.count)
            offset += b.count
        }
        Self.invert(byte: byte, [scratch])
        try inner.write(UnsafeRawBufferPointer(scratch), atPage: page)
    }

    /// Reads the whole range from the inner backend into a scratch buffer, hands the caller the
    /// first `cut` bytes, then fails: the caller's buffer is left half filled, as a read that
    /// stopped early leaves it.
    private func shortRead(into buffers: [UnsafeMutableRawBufferPointer], atPage page: Int, cut: Int) throws(SwapError) {
        let total = buffers.reduce(0) { $0 + $1.count }
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: total, alignment: SwapPage.size)
        defer { scratch.deallocate() }
        try inner.read(into: scratch, atPage: page)
        var offset = 0
        for b in buffers where offset < cut {
            let n = min(b.count, cut - offset)
            // In bounds: n ≤ b.count, and offset + n ≤ cut < total = scratch.count.
            b.baseAddress!.copyMemory(from: scratch.baseAddress! + offset, byteCount: n)
            offset += b.count
        }
        throw Self.error(.ioError, "read (short, \(cut) of \(total) bytes)", page..<page + total / SwapPage.size)
    }

    /// A torn write: the device gets the caller's bytes up to `cut` and keeps its old bytes after
    /// it (read back and written whole, since the inner backend moves whole pages), then EIO.
    private func tornWrite(_ buffers: [UnsafeRawBufferPointer], atPage page: Int, cut: Int) throws(SwapError) {
        let total = buffers.reduce(0) { $0 + $1.count }
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: total, alignment: SwapPage.size)
        defer { scratch.deallocate() }
        try inner.read(into: scratch, atPage: page)
        var offset = 0
        for b in buffers where offset < cut {
            let n = min(b.count, cut - offset)
            // In bounds: as in shortRead, with source and destination swapped.
            (scratch.baseAddress! + offset).copyMemory(from: b.baseAddress!, byteCount: n)
            offset += b.count
        }
        try inner.write(UnsafeRawBufferPointer(scratch), atPage: page)
        throw Self.error(.ioError, "write (torn, \(cut) of \(total) bytes)", page..<page + total / SwapPage.size)
    }

    private func count(_ c: Counter, on op: Operation) {
        state.withLock { $0.counters[op, default: [:]][c, default: 0] += 1 }
    }

    /// ENODEV: the device went away. (Kept here rather than in `Errno` until another user needs it.)
    private static let noDevice = Errno(rawValue: ENODEV)

    private static func counter(_ fault: Fault, _ op: Operation) -> Counter {
        switch fault {
        case .ioError: .ioErrors
        case .noSpace: op == .write ? .noSpace : .ioErrors
        case .short: .shortTransfers
        case .latency: .latencySpikes
        case .disappear: .goneCalls
        case .corrupt: .corruptions
        }
    }

    /// The error a `FileBackend` would report for `errno`: ENOSPC is a full disk, the rest I/O
    /// errors.
    private static func error(_ errno: Errno, _ what: String, _ pages: Range<Int>) -> SwapError {
        let message = "injected fault: \(what) of device pages \(pages) failed: \(errno.message)"
        return SwapError(errno == .noSpace ? .diskFull : .ioError, message, errno: errno)
    }

    /// A uniform draw in [0, 1) from SplitMix64.
    private static func uniform(_ state: inout UInt64) -> Double {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return Double((z ^ (z >> 31)) >> 11) / Double(1 << 53)
    }

    private static func sleep(_ d: Duration) {
        let (seconds, attoseconds) = d.components
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 { request = remaining }
    }
}
