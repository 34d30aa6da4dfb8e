import CUserSwapProcess
import Foundation
import Glibc
import Synchronization
import UserSwap

/// SIGINT, SIGTERM and SIGHUP for the commands that make files (`run`, `bench`, `format`):
/// instead of dying where it stands, the process removes what it made and exits with 128 + the
/// signal's number (130, 143, 129), the status a shell gives a command such a signal ended.
///
/// The handler only writes the signal's number to a pipe (write(2) is async-signal-safe). A
/// watcher thread reads it, runs the registered cleanups (which may lock, allocate and walk
/// folders: nothing a handler may do) and `SwapFile.removeStagedFiles()`, and ends the process
/// with `_exit`, which stops every worker thread where it is. The workers leave nothing to undo
/// on disk: their swap files have no names (`SwapSpace.DeviceConfiguration.temporary`), and
/// scratch folders are registered here. SIGKILL cannot be caught; what it leaves is only what
/// has a name, which is why swap files have none.
///
/// Installed by the executable's `main` only: a test that runs a command in-process keeps its
/// own signal handling.
public enum TerminationSignals {
    /// The signals handled, each with the status it exits with (128 + its number).
    public static let handled: [Int32] = [SIGINT, SIGTERM, SIGHUP]

    /// The pipe's write end; -1 until `install`. Written once, before any handler can run.
    private static let pipeWriteEnd = Atomic<Int32>(-1)
    /// Cleanups by token, run (in no particular order) when a signal arrives.
    private static let cleanups = Mutex<(next: Int, actions: [Int: @Sendable () -> Void])>((0, [:]))

    /// Installs the handlers and starts the watcher (once; later calls do nothing). SIGHUP stays
    /// ignored if the process was started with it ignored (`nohup`). SIGINT is caught even then:
    /// a shell starts background jobs with it ignored, and `kill -INT` must still clean up.
    public static func install() {
        var ends: [Int32] = [-1, -1]
        guard pipeWriteEnd.load(ordering: .acquiring) < 0, cus_pipe_cloexec(&ends) == 0 else { return }
        guard pipeWriteEnd.compareExchange(expected: -1, desired: ends[1], ordering: .acquiringAndReleasing).exchanged else {
            close(ends[0])
            close(ends[1])
            return
        }
        // A parent may have started us with these signals blocked (the mask survives exec), so
        // that they would stay pending forever: unblock them here, on the main thread, before
        // the threads that inherit its mask exist.
        var unblocked = sigset_t()
        sigemptyset(&unblocked)
        for signal in handled { sigaddset(&unblocked, signal) }
        pthread_sigmask(SIG_UNBLOCK, &unblocked, nil)
        let readEnd = ends[0]
        let watcher = Thread { watch(readEnd) }
        watcher.name = "userswap-signals"
        watcher.start()
        for signal in handled {
            var previous = sigaction()
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { signal in
                // Only async-signal-safe calls here; errno is the interrupted code's.
                let saved = errno
                var byte = UInt8(truncatingIfNeeded: signal)
                // Relaxed: `install` stored the descriptor before it installed this handler.
                _ = write(TerminationSignals.pipeWriteEnd.load(ordering: .relaxed), &byte, 1)
                errno = saved
            }
            sigemptyset(&action.sa_mask)
            // SA_RESTART: the workers' blocking calls go on until the watcher ends the process.
            action.sa_flags = SA_RESTART
            guard sigaction(signal, nil, &previous) == 0 else { continue }
            if signal == SIGHUP,
                unsafeBitCast(previous.__sigaction_handler.sa_handler, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self)
            {
                continue
            }
            sigaction(signal, &action, nil)
        }
    }

    /// The status a process ended by `signal` exits with.
    public static func exitStatus(for signal: Int32) -> Int32 { 128 + signal }

    /// Runs `body` with `cleanup` registered to run if a handled signal ends the process first.
    public static func withCleanup<T>(_ cleanup: @escaping @Sendable () -> Void, _ body: () throws -> T) rethrows -> T {
        let token = cleanups.withLock { state in
            defer { state.next += 1 }
            state.actions[state.next] = cleanup
            return state.next
        }
        defer { _ = cleanups.withLock { $0.actions.removeValue(forKey: token) } }
        return try body()
    }

    /// The watcher: waits for a signal's number, cleans up, and exits.
    private static func watch(_ readEnd: Int32) -> Never {
        var byte: UInt8 = 0
        while read(readEnd, &byte, 1) != 1 {
            // EINTR: read again. Nothing else can fail on our own pipe.
        }
        let signal = Int32(byte)
        let actions = cleanups.withLock { Array($0.actions.values) }
        for action in actions { action() }
        SwapFile.removeStagedFiles()
        let name = signal == SIGINT ? "SIGINT" : signal == SIGTERM ? "SIGTERM" : signal == SIGHUP ? "SIGHUP" : "signal \(signal)"
        let message = Array("userswap: stopped by \(name); temporary files removed\n".utf8)
        _ = write(STDERR_FILENO, message, message.count)
        _exit(exitStatus(for: signal))
    }
}
