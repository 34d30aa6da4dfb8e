import Dispatch
import Synchronization

/// The timed phase of `bench taskgroup`, the same code on both sides: `tasks` tasks on the
/// default executor, task `t` drawing its pages and its writes from `SplitMix64(seed + t)` (so
/// both sides see the same sequences), each access timed; beside them a heartbeat task that
/// sleeps 1 ms again and again and records how much later than that it wakes. Only the access
/// differs: an async pin of a region (UserSwap), or a load and a store on anonymous memory that
/// the kernel faults in, blocking the cooperative thread (`--mode kernel`).
struct TaskGroupLoop: Sendable {
    var tasks: Int
    var pages: Int
    var writePercent: Int
    var seed: UInt64
    var seconds: Double

    /// One access of `page` (a write when `write`): reads its first word, which must be `page`,
    /// and for a write stores it back. Returns whether the word was right (a failed pin: no).
    typealias Access = @Sendable (_ page: Int, _ write: Bool) async -> Bool

    /// What the tasks did.
    struct Outcome: Sendable {
        /// Per access, suspension or fault included.
        var histogram = LatencyHistogram()
        /// How late the heartbeat woke, per sleep.
        var heartbeat = LatencyHistogram()
        var ops: Int64 = 0
        var wrong = 0
        /// From the first task's start to the last one's end.
        var seconds: Double = 0

        /// The report's `heartbeat_late_us`.
        var heartbeatJSON: JSONValue {
            [
                "p50": .double(Double(heartbeat.value(atQuantile: 0.5)) / 1000),
                "p99": .double(Double(heartbeat.value(atQuantile: 0.99)) / 1000),
                "max": .double(Double(heartbeat.value(atQuantile: 1)) / 1000),
                "count": JSONValue(Int(heartbeat.count)),
            ]
        }

        /// The line the log gets.
        var summary: String {
            "\(ops) accesses in \(LatencySummary.trimmed(seconds)) s; access p99 \(histogram.value(atQuantile: 0.99) / 1000) µs; heartbeat late p50 \(heartbeat.value(atQuantile: 0.5) / 1000) µs, p99 \(heartbeat.value(atQuantile: 0.99) / 1000) µs"
        }
    }

    /// The page and the kind of the `n`th access of a task whose generator is `rng`.
    @inline(__always)
    static func next(_ rng: inout SplitMix64, pages: Int, writePercent: Int) -> (page: Int, write: Bool) {
        let page = Int(rng.next() % UInt64(pages))
        return (page, Int(rng.next() % 100) < writePercent)
    }

    /// Runs the tasks and the heartbeat on the default executor for `seconds`, waiting for them
    /// on this thread (which must not be one of the executor's).
    func run(_ access: @escaping Access) -> Outcome {
        let (tasks, pages, writes, seed) = (self.tasks, self.pages, self.writePercent, self.seed)
        let start = DispatchTime.now().uptimeNanoseconds
        let deadline = start + UInt64(seconds * 1e9)
        var outcome = Self.waitFor {
            await withTaskGroup(of: (Outcome, isHeartbeat: Bool).self) { group in
                // The heartbeat first, so that it is asleep before the tasks take the threads.
                // Each sleep is recorded when it ends, past the deadline included: tasks that
                // never suspend (faults block the thread) keep it asleep until they are done,
                // and that one late wake-up is the figure. If it could not even start before
                // the deadline, its start counts as a wake-up due 1 ms after the phase began.
                group.addTask {
                    var o = Outcome()
                    let started = DispatchTime.now().uptimeNanoseconds
                    if started >= deadline { o.heartbeat.record(started - start - min(started - start, 1_000_000)) }
                    while DispatchTime.now().uptimeNanoseconds < deadline {
                        let before = DispatchTime.now().uptimeNanoseconds
                        try? await Task.sleep(nanoseconds: 1_000_000)
                        let slept = DispatchTime.now().uptimeNanoseconds - before
                        o.heartbeat.record(slept > 1_000_000 ? slept - 1_000_000 : 0)
                    }
                    return (o, true)
                }
                for t in 0..<tasks {
                    group.addTask {
                        var rng = SplitMix64(seed: seed &+ UInt64(t))
                        var o = Outcome()
                        while DispatchTime.now().uptimeNanoseconds < deadline {
                            let (page, write) = Self.next(&rng, pages: pages, writePercent: writes)
                            let before = DispatchTime.now().uptimeNanoseconds
                            if await !access(page, write) { o.wrong += 1 }
                            o.histogram.record(DispatchTime.now().uptimeNanoseconds - before)
                            o.ops += 1
                        }
                        return (o, false)
                    }
                }
                var all = Outcome()
                for await (o, isHeartbeat) in group {
                    if isHeartbeat {
                        all.heartbeat = o.heartbeat
                    } else {
                        all.histogram.merge(o.histogram)
                        all.ops += o.ops
                        all.wrong += o.wrong
                    }
                }
                return all
            }
        }
        outcome.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return outcome
    }

    /// Runs `body` on the default executor and waits for it on this (non-cooperative) thread.
    private static func waitFor<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
        let result = Mutex<T?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task.detached {
            let value = await body()
            result.withLock { $0 = value }
            done.signal()
        }
        done.wait()
        return result.withLock { $0! }
    }
}
