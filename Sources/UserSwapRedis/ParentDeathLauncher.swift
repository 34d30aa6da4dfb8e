import CUserSwapProcess
import Foundation
import Glibc
import Synchronization
import UserSwap

/// Starts child processes that the kernel kills when this process ends, however it ends
/// (SIGKILL included): `prctl(PR_SET_PDEATHSIG, SIGKILL)` in the child, set between `fork` and
/// `exec` (`cus_spawn_with_parent_death_signal`).
///
/// The kernel sends that signal when the *thread* that forked the child ends, not the process
/// (prctl(2)): a child forked from a worker thread that later exits would die with it. So every
/// fork happens on one thread of ours that never returns and lives as long as the process; callers
/// hand it their request and wait for the pid.
final class ParentDeathLauncher: Sendable {
    static let shared = ParentDeathLauncher()

    /// Requests not yet taken by the launcher thread.
    private let requests = Mutex<[@Sendable () -> Void]>([])
    /// One permit per request queued.
    private let queued = DispatchSemaphore(value: 0)

    private init() {
        let thread = Thread { [self] in
            while true {
                queued.wait()
                let request = requests.withLock { $0.removeFirst() }
                request()
            }
        }
        thread.name = "userswap-launcher"
        thread.start()
    }

    /// Starts `path` with `arguments` (argv[1...]) and the current environment (less the Redis
    /// passwords it may hold: `USERSWAP_REDIS_PASSWORD`, `REDISCLI_AUTH`); its standard
    /// input, output and error are `stdin`, `stdout` and `stderr`. Returns its pid. The child is
    /// SIGKILLed when this process ends; the caller reaps it (`waitpid`).
    func spawn(_ path: String, arguments: [String], stdin: Int32, stdout: Int32, stderr: Int32) throws(SwapError) -> pid_t {
        let result = Mutex<pid_t>(0)
        let done = DispatchSemaphore(value: 0)
        let argv = [path] + arguments
        // Our environment, but no password meant for another server.
        let environment = ProcessInfo.processInfo.environment
            .filter { !["USERSWAP_REDIS_PASSWORD", "REDISCLI_AUTH"].contains($0.key) }
            .map { "\($0.key)=\($0.value)" }
        requests.withLock {
            $0.append {
                let pid = Self.withCStrings(argv) { argv in
                    Self.withCStrings(environment) { envp in
                        cus_spawn_with_parent_death_signal(path, argv, envp, stdin, stdout, stderr, SIGKILL)
                    }
                }
                result.withLock { $0 = pid }
                done.signal()
            }
        }
        queued.signal()
        done.wait()
        let pid = result.withLock { $0 }
        guard pid > 0 else {
            throw SwapError(
                .ioError, "cannot start \(path): fork failed (\(String(cString: strerror(-pid))))",
                errno: Errno(rawValue: -pid))
        }
        return pid
    }

    /// `strings` as a NULL-terminated array of C strings, valid during `body`.
    private static func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
        let copies: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) } + [nil]
        defer { for c in copies { free(c) } }
        return copies.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}
