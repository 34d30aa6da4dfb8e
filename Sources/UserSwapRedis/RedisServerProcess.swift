import Foundation
import Glibc
import Synchronization
import UserSwap

/// A private `redis-server` run as a child process on 127.0.0.1, for tests and benchmarks: a
/// free port, no persistence (`--save '' --appendonly no`), its log in a temporary file. It can
/// be killed (SIGKILL, as a crash), paused (SIGSTOP, a server that stops answering) and started
/// again on the same port; it is killed when the object goes away.
///
/// ```swift
/// let server = try RedisServerProcess()
/// let redis = try RedisBackend(pageCount: 1 + 512, configuration: .init(port: server.port))
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

    public let port: Int
    public let host = "127.0.0.1"
    /// Extra `redis-server` arguments (`["--requirepass", "secret"]`).
    public let arguments: [String]
    /// Where the server's log goes.
    public let logPath: String

    /// The running child, if any. Held only to start, signal or reap it.
    private let child = Mutex<Process?>(nil)

    /// Starts a server on `port`, or on a free port when nil, and waits until it answers PING.
    public init(port: Int? = nil, arguments: [String] = [], startTimeout: Duration = .seconds(10)) throws(SwapError) {
        guard let executable = Self.executable else {
            throw SwapError(.noSuchFile, "redis-server is not installed; run scripts/bootstrap (Debian: apt-get install redis-server)")
        }
        self.arguments = arguments
        var chosen = port ?? 0
        var lastError: SwapError?
        // A free port can be taken by someone else between our probe and the server's bind:
        // try a few.
        for _ in 0..<(port == nil ? 5 : 1) {
            if port == nil { chosen = try Self.freePort() }
            do {
                try Self.launch(executable, port: chosen, arguments: arguments, into: child,
                                log: Self.logPath(port: chosen), timeout: startTimeout)
                lastError = nil
                break
            } catch {
                lastError = error
            }
        }
        self.port = chosen
        logPath = Self.logPath(port: chosen)
        if let lastError { throw lastError }
    }

    deinit {
        kill()
        // The log matters only while a start fails (its tail goes into the error).
        _ = unlink(logPath)
    }

    /// `redis://127.0.0.1:PORT`.
    public var url: String { "redis://\(host):\(port)" }

    /// The child's process id, while it runs.
    public var pid: Int32? { child.withLock { $0?.isRunning == true ? $0?.processIdentifier : nil } }

    /// Kills the server at once (SIGKILL, a crash: everything it held is gone) and reaps it.
    public func kill() { signalAndReap(SIGKILL) }

    /// Stops the server politely (SIGTERM) and reaps it.
    public func stop() { signalAndReap(SIGTERM) }

    /// Freezes the server (SIGSTOP): connections stay open, nothing is answered.
    public func pause() { if let pid { _ = Glibc.kill(pid, SIGSTOP) } }

    /// Lets a paused server go on (SIGCONT).
    public func resume() { if let pid { _ = Glibc.kill(pid, SIGCONT) } }

    /// Starts a new, empty server on the same port after `kill()` or `stop()`.
    public func restart(startTimeout: Duration = .seconds(10)) throws(SwapError) {
        kill()
        guard let executable = Self.executable else {
            throw SwapError(.noSuchFile, "redis-server is not installed; run scripts/bootstrap")
        }
        try Self.launch(executable, port: port, arguments: arguments, into: child, log: logPath, timeout: startTimeout)
    }

    private func signalAndReap(_ signal: Int32) {
        let process = child.withLock { c in
            let p = c
            c = nil
            return p
        }
        guard let process, process.isRunning else { return }
        _ = Glibc.kill(process.processIdentifier, SIGCONT)   // a paused server must run to die of SIGTERM
        _ = Glibc.kill(process.processIdentifier, signal)
        process.waitUntilExit()
    }

    private static func logPath(port: Int) -> String {
        NSTemporaryDirectory() + "userswap-redis-\(getpid())-\(port).log"
    }

    /// Starts `redis-server` on `port` and waits until it answers PING.
    private static func launch(_ executable: String, port: Int, arguments: [String], into child: borrowing Mutex<Process?>,
                               log: String, timeout: Duration) throws(SwapError) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--daemonize", "no", "--dir", NSTemporaryDirectory(), "--loglevel", "warning"] + arguments
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let logHandle = FileHandle(forWritingAtPath: log)
        process.standardOutput = logHandle ?? FileHandle.nullDevice
        process.standardError = logHandle ?? FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw SwapError(.ioError, "cannot start \(executable): \(error)")
        }
        try? logHandle?.close()
        child.withLock { $0 = process }

        let password = passwordIn(arguments)
        let endpoint = RedisEndpoint(host: "127.0.0.1", port: port, username: nil, password: password, database: 0,
                                     connectTimeout: .milliseconds(200), commandTimeout: .seconds(1))
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if !process.isRunning {
                child.withLock { $0 = nil }
                throw SwapError(.ioError, "redis-server on port \(port) exited with status \(process.terminationStatus) at start: \(tail(of: log))")
            }
            if let connection = try? _RedisConnection(endpoint),
               let pong = try? connection.command(RedisCommand("PING")), pong.view.text == "PONG" {
                return
            }
            usleep(20_000)
        }
        _ = Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        child.withLock { $0 = nil }
        throw SwapError(.ioError, "redis-server on port \(port) did not answer PING within \(timeout): \(tail(of: log))")
    }

    private static func passwordIn(_ arguments: [String]) -> String? {
        guard let i = arguments.firstIndex(of: "--requirepass"), i + 1 < arguments.count else { return nil }
        return arguments[i + 1]
    }

    private static func tail(of path: String) -> String {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        let lines = text.split(separator: "\n").suffix(3).joined(separator: " / ")
        return lines.isEmpty ? "(no log output)" : lines
    }

    /// A port nobody listens on right now: bind to port 0 on loopback and ask which port the
    /// kernel chose.
    static func freePort() throws(SwapError) -> Int {
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
