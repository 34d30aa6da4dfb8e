import CUserSwapProcess
import Foundation
import Glibc
import Synchronization
import UserSwap

/// A private `redis-server` run as a child process, for `--device redis`, tests and benchmarks.
/// Nobody else can reach it and it cannot outlive us:
///
/// - It listens only on a unix socket in a folder of its own made by `mkdtemp` (mode 0700, so
///   only this user, and root, can even reach the socket), with `port 0`: no TCP listener.
/// - It requires a password (`requirepass`): 32 random bytes from the kernel's CSPRNG
///   (`getrandom`), given to the server on its standard input (`redis-server -`), so it never
///   appears in its command line (`ps`) or in a file.
/// - Its log goes to a file in the same folder; nothing else is written (`save ""`,
///   `appendonly no`).
/// - It is SIGKILLed by the kernel when this process ends, however it ends
///   (`PR_SET_PDEATHSIG`, see `ParentDeathLauncher`): its pages die with it.
/// - Start-up is done when a connection over that socket, authenticated with that password,
///   answers PING: nothing else can pass for it.
///
/// It can be killed (SIGKILL, as a crash), paused (SIGSTOP, a server that stops answering) and
/// started again on the same socket with the same password; it is killed, and its folder
/// removed, when the object goes away.
///
/// ```swift
/// let server = try RedisServerProcess()
/// let redis = try RedisBackend(pageCount: 1 + 512, configuration: server.configuration)
/// ```
public final class RedisServerProcess: Sendable {
    /// The `redis-server` binary: `$REDIS_SERVER`, else the first on `PATH`, else the usual
    /// Debian places; nil when none is installed.
    public static var executable: String? {
        var candidates: [String] = []
        if let explicit = ProcessInfo.processInfo.environment["REDIS_SERVER"] { candidates.append(explicit) }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            candidates.append("\(dir)/redis-server")
        }
        candidates += ["/usr/bin/redis-server", "/usr/sbin/redis-server", "/usr/local/bin/redis-server"]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// The private folder (0700) that holds the socket and the log.
    public let directory: String
    /// The unix socket the server listens on.
    public let socketPath: String
    /// The server's password (64 hex digits). Give it to clients, never print it.
    public let password: String
    /// Extra `redis-server` arguments (`["--maxmemory", "4mb"]`).
    public let arguments: [String]
    /// Where the server's log goes.
    public var logPath: String { directory + "/redis.log" }

    /// The running child's pid, if any. Held only to start, signal or reap it.
    private let child = Mutex<pid_t?>(nil)

    /// Starts a server and waits until it answers an authenticated PING on its socket.
    public init(arguments: [String] = [], startTimeout: Duration = .seconds(10)) throws(SwapError) {
        guard let executable = Self.executable else {
            throw SwapError(.noSuchFile, "redis-server is not installed; run scripts/bootstrap (Debian: apt-get install redis-server)")
        }
        Self.removeAbandonedFolders()
        directory = try Self.makePrivateDirectory()
        socketPath = directory + "/redis.sock"
        password = try Self.randomPassword()
        self.arguments = arguments
        do {
            try launch(executable, timeout: startTimeout)
        } catch {
            removeFolder()
            throw error
        }
    }

    deinit {
        kill()
        removeFolder()
    }

    /// `unix:///…/redis.sock`: where it is, without the password.
    public var url: String { "unix://\(socketPath)" }

    /// A backend configuration that reaches this server: its socket and its password.
    public var configuration: RedisBackend.Configuration {
        RedisBackend.Configuration(socketPath: socketPath, password: password)
    }

    /// The child's process id, from its start until `kill()` or `stop()` reaps it.
    public var pid: Int32? { child.withLock { $0 } }

    /// Kills the server at once (SIGKILL, a crash: everything it held is gone) and reaps it.
    public func kill() { signalAndReap(SIGKILL) }

    /// Stops the server politely (SIGTERM) and reaps it.
    public func stop() { signalAndReap(SIGTERM) }

    /// Freezes the server (SIGSTOP): connections stay open, nothing is answered.
    public func pause() { if let pid { _ = Glibc.kill(pid, SIGSTOP) } }

    /// Lets a paused server go on (SIGCONT).
    public func resume() { if let pid { _ = Glibc.kill(pid, SIGCONT) } }

    /// Starts a new, empty server on the same socket, with the same password, after `kill()`
    /// or `stop()`.
    public func restart(startTimeout: Duration = .seconds(10)) throws(SwapError) {
        kill()
        guard let executable = Self.executable else {
            throw SwapError(.noSuchFile, "redis-server is not installed; run scripts/bootstrap")
        }
        try launch(executable, timeout: startTimeout)
    }

    private func signalAndReap(_ signal: Int32) {
        guard
            let pid = child.withLock({ c in
                defer { c = nil }
                return c
            })
        else { return }
        _ = Glibc.kill(pid, SIGCONT)  // a paused server must run to die of SIGTERM
        _ = Glibc.kill(pid, signal)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    }

    // MARK: Start-up

    /// The server's configuration, read from its standard input: everything that matters is
    /// here rather than on its command line.
    private var configurationText: String {
        """
        port 0
        unixsocket \(Self.quoted(socketPath))
        unixsocketperm 700
        requirepass \(password)
        dir \(Self.quoted(directory))
        save ""
        appendonly no
        daemonize no
        loglevel warning
        protected-mode yes

        """
    }

    /// Starts `redis-server -` (configuration on stdin, `arguments` after it) and waits until it
    /// answers an authenticated PING on our socket.
    private func launch(_ executable: String, timeout: Duration) throws(SwapError) {
        // A server that dies before reading its configuration must not take us with it
        // (SIGPIPE on the write below).
        _RedisSystem.ignoreBrokenPipes()
        _ = unlink(socketPath)
        // The log: created here, in our folder, never followed through a link.
        let log = open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard log >= 0 else {
            throw SwapError(
                .ioError, "cannot create the redis-server log \(logPath): \(String(cString: strerror(errno)))",
                errno: Errno(rawValue: errno))
        }
        defer { close(log) }
        var pipeEnds: [Int32] = [0, 0]
        let piped = pipeEnds.withUnsafeMutableBufferPointer { cus_pipe_cloexec($0.baseAddress!) }
        guard piped == 0 else {
            throw SwapError(
                .ioError, "cannot make a pipe for redis-server's configuration: \(String(cString: strerror(-piped)))",
                errno: Errno(rawValue: -piped))
        }
        let pid: pid_t
        do {
            pid = try ParentDeathLauncher.shared.spawn(
                executable, arguments: ["-"] + arguments,
                stdin: pipeEnds[0], stdout: log, stderr: log)
        } catch {
            close(pipeEnds[0])
            close(pipeEnds[1])
            throw error
        }
        close(pipeEnds[0])
        child.withLock { $0 = pid }
        // A few hundred bytes: the pipe takes them at once, and closing it ends the file.
        let text = Array(configurationText.utf8)
        _ = text.withUnsafeBytes { write(pipeEnds[1], $0.baseAddress, $0.count) }
        close(pipeEnds[1])

        let endpoint = RedisEndpoint(
            host: "", port: 0, socketPath: socketPath, username: nil, password: password,
            database: 0, connectTimeout: .milliseconds(200), commandTimeout: .seconds(1))
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                child.withLock { $0 = nil }
                throw SwapError(.ioError, "redis-server exited with status \(status >> 8) at start: \(tail(of: logPath))")
            }
            // Our socket, our password: only the server we started can answer.
            if let connection = try? _RedisConnection(endpoint),
                let pong = try? connection.command(RedisCommand("PING")), pong.view.text == "PONG"
            {
                return
            }
            usleep(20_000)  // A poll on purpose: a starting server signals nothing when it listens
        }
        signalAndReap(SIGKILL)
        throw SwapError(.ioError, "redis-server did not answer PING on \(socketPath) within \(timeout): \(tail(of: logPath))")
    }

    private func tail(of path: String) -> String {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        let lines = text.split(separator: "\n").suffix(3).joined(separator: " / ")
        return lines.isEmpty ? "(no log output)" : lines
    }

    // MARK: The private folder

    /// The name every private folder starts with; the pid of the process that made it follows.
    static let folderPrefix = "userswap-redis-"

    /// A fresh folder of ours, mode 0700: `$TMPDIR/userswap-redis-PID-XXXXXX` (`/tmp` when
    /// `$TMPDIR` is too long for a socket path, at most 107 bytes).
    private static func makePrivateDirectory() throws(SwapError) -> String {
        var base = NSTemporaryDirectory()
        if base.hasSuffix("/") { base.removeLast() }
        if base.utf8.count > 60 { base = "/tmp" }
        var template = Array("\(base)/\(folderPrefix)\(getpid())-XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw SwapError(
                .ioError,
                "cannot make a private folder for redis-server in \(base): \(String(cString: strerror(errno))); set TMPDIR to a writable folder",
                errno: Errno(rawValue: errno))
        }
        return template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// Removes our folder: the two names we put there, then the folder.
    private func removeFolder() {
        for name in ["redis.sock", "redis.log"] { _ = unlink(directory + "/" + name) }
        _ = rmdir(directory)
    }

    /// Removes the folders that processes of ours killed before they could (SIGKILL) left in the
    /// temporary folder: each holds a socket and a log (never pages: the server died with its
    /// parent). Only folders owned by this user, whose process no longer exists, and only the
    /// names we put there.
    static func removeAbandonedFolders() {
        for base in Set([NSTemporaryDirectory(), "/tmp"]) {
            let base = base.hasSuffix("/") ? String(base.dropLast()) : base
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: base) else { continue }
            for name in names where name.hasPrefix(folderPrefix) {
                let rest = name.dropFirst(folderPrefix.count)
                guard let dash = rest.firstIndex(of: "-"), let pid = Int32(rest[..<dash]), pid != getpid() else { continue }
                let path = base + "/" + name
                var info = stat()
                guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR, info.st_uid == geteuid() else { continue }
                // Still running (or its pid reused: then we cannot tell, and leave it).
                if Glibc.kill(pid, 0) == 0 || errno == EPERM { continue }
                for file in ["redis.sock", "redis.log"] { _ = unlink(path + "/" + file) }
                _ = rmdir(path)
            }
        }
    }

    // MARK: Helpers

    /// 32 bytes from the kernel's CSPRNG, as 64 hex digits.
    static func randomPassword() throws(SwapError) -> String {
        var bytes = [UInt8](repeating: 0, count: 32)
        let result = bytes.withUnsafeMutableBytes { cus_getrandom($0.baseAddress!, $0.count) }
        guard result == 0 else {
            throw SwapError(
                .ioError, "getrandom failed: \(String(cString: strerror(-result))); cannot make a password for redis-server",
                errno: Errno(rawValue: -result))
        }
        return bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    /// A path as one redis.conf argument: in double quotes, `\` and `"` escaped.
    private static func quoted(_ path: String) -> String {
        "\"" + path.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// A port nobody listens on right now (bind to port 0 on loopback and ask which port the
    /// kernel chose): for tests of a server that is not there.
    public static func freePort() throws(SwapError) -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SwapError(.ioError, "socket() failed: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { a in
            a.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                bind(fd, sa, length) == 0 && getsockname(fd, sa, &length) == 0
            }
        }
        guard bound else { throw SwapError(.ioError, "cannot find a free loopback port: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
