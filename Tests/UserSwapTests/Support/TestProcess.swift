import Foundation
import Glibc
import Testing

/// Runs a program from a test and waits for it: its standard output and error in one string.
///
/// Spawned with every signal unblocked and at its default (posix_spawn): the test runner's
/// threads block signals, and a daemon (redis-server) that inherited that mask would ignore the
/// SIGTERM that stops it.
enum TestProcess {
    /// The repository's root, found from this file's place in it.
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    /// With a `timeout`, a child still running then is killed (SIGKILL) and the status is -1.
    static func run(
        _ executable: String, _ arguments: [String], environment: [String: String], timeout: Duration? = nil
    ) throws -> (status: Int32, output: String) {
        var template = Array((FileManager.default.temporaryDirectory.path + "/userswap-test-output-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        try #require(fd >= 0, "cannot make a file for a child's output")
        close(fd)
        let log = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        defer { unlink(log) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let spawned =
            executable.hasPrefix("/")
            ? posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
            : posix_spawnp(&pid, executable, &actions, &attributes, argv, envp)
        try #require(spawned == 0, "cannot run \(executable): errno \(spawned)")
        var status: Int32 = 0
        var timedOut = false
        if let timeout {
            let deadline = ContinuousClock.now + timeout
            while waitpid(pid, &status, WNOHANG) == 0 {
                if ContinuousClock.now >= deadline {
                    timedOut = true
                    kill(pid, SIGKILL)
                    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                    break
                }
                usleep(20_000)
            }
        } else {
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        }
        let output = String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self)
        if timedOut { return (-1, output) }
        // WIFEXITED / WEXITSTATUS, which Glibc's module leaves out.
        return (status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f), output)
    }
}
