import CUserSwap
import Foundation

/// What the kernel says a thread of this process is doing (`/proc/self/task/<tid>/syscall`):
/// lets a test see that a waiter sleeps on its event (in `futex(2)`) rather than polls, without
/// timing it.
enum ThreadProbe {
    /// `futex(2)`'s number on this architecture.
    #if arch(x86_64)
    static let futexSyscall = 202
    #elseif arch(arm64)
    static let futexSyscall = 98
    #endif

    /// The system call thread `tid` is blocked in, nil when it is running or not in one.
    static func blockedSyscall(tid: Int32) -> Int? {
        guard let line = try? String(contentsOfFile: "/proc/self/task/\(tid)/syscall", encoding: .utf8),
            let first = line.split(separator: " ").first
        else { return nil }
        return Int(first.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Waits up to `seconds` for thread `tid` to be asleep in `futex(2)`; false if it never was.
    /// A thread that polls (`usleep`, `sched_yield`) is seen in another system call or running.
    static func waitUntilInFutex(tid: Int32, seconds: Double = 10) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if blockedSyscall(tid: tid) == futexSyscall { return true }
            usleep(1000)  // A poll on purpose: the kernel tells no one when a thread falls asleep.
        }
        return false
    }
}
