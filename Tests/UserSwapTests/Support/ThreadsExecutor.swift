import Foundation
import Synchronization

@testable import UserSwap

/// A task executor with threads of its own, for tests of async code that must not depend on
/// Swift's global cooperative pool: the whole suite runs in parallel on it, and blocking tests
/// of other suites can hold its threads (one per core) for seconds. Tasks that prefer this
/// executor (`withTaskExecutorPreference`, `Task(executorPreference:)`) run on its `threads`
/// threads only, so a test also knows how many threads its tasks have. Its threads live as
/// long as the test process.
final class ThreadsExecutor: TaskExecutor, Sendable {
    let threads: Int
    private let jobs = Mutex<[UnownedJob]>([])
    private let ready = DispatchSemaphore(value: 0)

    init(threads: Int) {
        self.threads = threads
        for i in 0..<threads {
            let thread = Thread { [self] in run() }
            thread.name = "test-executor-\(i)"
            thread.start()
        }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        jobs.withLock { $0.append(job) }
        ready.signal()
    }

    private func run() {
        while true {
            ready.wait()
            let job = jobs.withLock { $0.removeFirst() }
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
