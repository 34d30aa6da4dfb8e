import Glibc

/// The process's context switches so far, every thread's (`getrusage(RUSAGE_SELF)`):
/// voluntary ones (a thread slept: on a futex, a disk read, a semaphore) and involuntary ones
/// (a thread was preempted). Over a transparent region's faults, voluntary switches per fault
/// say how often a fault put a thread to sleep: a fault handed from the faulting thread to a
/// worker costs two or more (the faulting thread's wait, the worker's sleep after it).
public struct ContextSwitches: Sendable, Equatable {
    public var voluntary: Int64
    public var involuntary: Int64

    public init(voluntary: Int64 = 0, involuntary: Int64 = 0) {
        self.voluntary = voluntary
        self.involuntary = involuntary
    }

    /// Now.
    public static func now() -> ContextSwitches {
        var usage = rusage()
        // getrusage(RUSAGE_SELF) cannot fail with a valid pointer.
        _ = getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return ContextSwitches(voluntary: Int64(usage.ru_nvcsw), involuntary: Int64(usage.ru_nivcsw))
    }

    public static func - (after: ContextSwitches, before: ContextSwitches) -> ContextSwitches {
        ContextSwitches(voluntary: after.voluntary - before.voluntary, involuntary: after.involuntary - before.involuntary)
    }

    public static func + (a: ContextSwitches, b: ContextSwitches) -> ContextSwitches {
        ContextSwitches(voluntary: a.voluntary + b.voluntary, involuntary: a.involuntary + b.involuntary)
    }
}
