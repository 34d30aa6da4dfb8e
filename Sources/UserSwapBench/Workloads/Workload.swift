import Synchronization
import UserSwap

/// A program that uses swappable memory the way real ones do, in phases (populate, access,
/// look up, …), each run on every thread by `WorkloadDriver`, followed by a verification phase
/// that re-reads everything the workload touched and checks it against what it wrote.
///
/// `userswap run` and the `zipf`, `random`, `seq`, `usemem` and `hashtable` benchmarks all run
/// workloads through `WorkloadSession`, so a number from one is a number from the other.
public protocol Workload: Sendable {
    /// One line for reports: "zipf θ=0.99 over 262144 pages, 20 % writes".
    var summary: String { get }
    /// The phases in order, verification excluded. Measured phases make up the report.
    var phases: [WorkloadPhase] { get }
    /// Re-reads every page the phases touched and checks each in full; its `step`s count what
    /// they checked in `verification`.
    func verificationPhase() -> WorkloadPhase
    /// What reads checked on the way (a read of a stale page fails here, at once).
    var readChecks: VerificationLedger { get }
    /// What the verification phase checked.
    var verification: VerificationLedger { get }
    /// What the verification phase checks one by one ("pages", "pages of the table").
    var verifiedUnit: String { get }
    /// Problems visible only once verification is over (a table holding the wrong number of
    /// keys). Called after the verification phase.
    func finalProblems() -> [String]
}

extension Workload {
    public var verifiedUnit: String { "pages" }
    public func finalProblems() -> [String] { [] }
}

/// One phase of a workload: every thread makes a worker and calls its `step` (one access, one
/// insert, one lookup) until the phase's length is done.
public struct WorkloadPhase: Sendable {
    public enum Length: Sendable, Equatable {
        /// A fixed job of this many steps, split over the threads in contiguous shares
        /// (`share(of:thread:threads:)`); each thread's worker must know its share.
        case steps(Int)
        /// Until the run's `WorkloadLimit`.
        case open
    }

    /// "populate", "access", "fill", "insert", "verify".
    public let name: String
    /// Whether its operations count in the report (populate and verify do not).
    public let measured: Bool
    public let length: Length
    /// Operations one step does (a batch of lookups: `multiget`); 1 for most phases. The
    /// driver counts `opsPerStep` operations per step, turns an operation limit into steps
    /// (rounded up), and records each step's time ÷ `opsPerStep` as every one of its operations'
    /// latency, keeping the steps' own times beside (`PhaseOutcome.stepLatency`).
    public let opsPerStep: Int
    /// Called on each worker thread, before the phase's clock starts: makes the thread's worker
    /// and wraps it with the driver's timing loop.
    let prepare: @Sendable (_ thread: Int, _ threads: Int) -> PreparedWorker

    /// A phase whose threads each run a worker made by `makeWorker`.
    ///
    /// Generic over the worker's type so that the timing loop, the worker's `step` and
    /// everything it calls (the access pattern, the page store's `withPage`) are specialized
    /// together, with no dynamic dispatch per step — provided the phase is made where the
    /// worker's type is known, which `PreparedWorkload` sees to.
    public init<Worker: WorkloadWorker & SendableMetatype>(
        _ name: String, measured: Bool, length: Length, opsPerStep: Int = 1,
        makeWorker: @escaping @Sendable (_ thread: Int, _ threads: Int) -> Worker
    ) {
        require(opsPerStep >= 1, "\(opsPerStep) operations per step; at least 1")
        require(opsPerStep == 1 || length == .open, "a fixed job counts steps: batches are for open phases")
        self.name = name
        self.measured = measured
        self.length = length
        self.opsPerStep = opsPerStep
        prepare = { thread, threads in PreparedWorker(makeWorker(thread, threads), opsPerStep: opsPerStep) }
    }

    /// Thread `thread`'s contiguous share of `total` steps: the same split the driver uses.
    public static func share(of total: Int, thread: Int, threads: Int) -> Range<Int> {
        require(thread >= 0 && thread < threads && total >= 0, "thread \(thread) of \(threads), total \(total)")
        return total * thread / threads..<total * (thread + 1) / threads
    }
}

/// One thread's state in a phase. Not shared: made and used on its own thread.
public protocol WorkloadWorker {
    /// One operation, timed by the driver.
    mutating func step() throws
    /// After the last step (untimed): hand local counts to the shared ledgers.
    mutating func finish()
}

extension WorkloadWorker {
    public mutating func finish() {}
}

/// How long the open phases of a run last.
public enum WorkloadLimit: Sendable, Equatable {
    /// Until this many seconds after the phase's start.
    case seconds(Double)
    /// This many operations over all threads (split like `WorkloadPhase.share`).
    case operations(Int)
    /// Exactly these operations on each thread: to replay a run step for step (same seed, same
    /// per-thread sequences), as the Zipf workingset comparison does.
    case operationsPerThread([Int])

    /// The operations thread `thread` does, or nil for a clock limit.
    func operations(thread: Int, threads: Int) -> Int? {
        switch self {
        case .seconds: nil
        case .operations(let total): WorkloadPhase.share(of: total, thread: thread, threads: threads).count
        case .operationsPerThread(let counts): thread < counts.count ? counts[thread] : 0
        }
    }
}

/// Counts checks and mismatches from any thread, and keeps the first few failures' words.
/// Workers add their counts once, in `finish`, so the hot path touches no shared line.
public final class VerificationLedger: Sendable {
    private let checkedCount = Atomic<Int>(0)
    private let mismatchCount = Atomic<Int>(0)
    private let failureTexts = Mutex<[String]>([])
    static let keptFailures = 8

    public init() {}

    public func add(checked: Int) {
        // Relaxed: read only after the threads joined, which orders it.
        checkedCount.wrappingAdd(checked, ordering: .relaxed)
    }

    /// Records one mismatch; `text` says which page and what was wrong.
    public func mismatch(_ text: @autoclosure () -> String) {
        // Relaxed: as `add`.
        let before = mismatchCount.wrappingAdd(1, ordering: .relaxed).oldValue
        if before < Self.keptFailures {
            let line = text()
            failureTexts.withLock { $0.append(line) }
        }
    }

    public var checked: Int { checkedCount.load(ordering: .relaxed) }  // Relaxed: read after the threads joined
    public var mismatches: Int { mismatchCount.load(ordering: .relaxed) }  // Relaxed: as `checked`
    /// The first few mismatches, in words.
    public var failures: [String] { failureTexts.withLock { $0 } }
}

/// The error of a run whose data did not verify: the process exits with status 1.
public struct WorkloadError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
