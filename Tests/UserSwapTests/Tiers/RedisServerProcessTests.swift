import Foundation
import Glibc
import Testing

@testable import UserSwap
@testable import UserSwapRedis

/// The private `redis-server` as another user of the machine would try it: it must listen on no
/// TCP port, refuse a client without its password, keep the password out of its command line,
/// keep its files in a folder only we can enter, and die with the process that started it.
@Suite(
    "Private redis-server", .serialized,
    .enabled(
        if: RedisServerProcess.executable != nil,
        "redis-server is not installed, so the private server is NOT tested: run scripts/bootstrap (apt-get install redis-server)"))
struct RedisServerProcessTests {
    @Test("no TCP listener: none of the server's sockets is in /proc/net/tcp or tcp6; its unix socket is")
    func noTCPListener() throws {
        let server = try RedisServerProcess()
        let pid = try #require(server.pid)
        let inodes = Self.socketInodes(of: pid)
        #expect(!inodes.isEmpty, "the server has no sockets at all: the check below would prove nothing")
        let tcp = Self.inodes(inTable: "/proc/net/tcp").union(Self.inodes(inTable: "/proc/net/tcp6"))
        let unix = Self.inodes(inTable: "/proc/net/unix")
        #expect(inodes.isDisjoint(with: tcp), "the private server has TCP sockets: \(inodes.intersection(tcp))")
        #expect(!inodes.isDisjoint(with: unix), "the private server's unix socket is not in /proc/net/unix")
        print("private redis-server \(pid): sockets \(inodes.sorted()), none of them TCP")
    }

    @Test("a client without the password is refused (NOAUTH), also through redis-cli; the password is not on the command line")
    func passwordRequired() throws {
        let server = try RedisServerProcess()
        // hiredis straight to the socket, no AUTH.
        let bare = try _RedisConnection(
            RedisEndpoint(
                host: "", port: 0, socketPath: server.socketPath, username: nil,
                password: nil, database: 0, connectTimeout: .seconds(1), commandTimeout: .seconds(2)))
        let reply = try bare.command(RedisCommand("PING"))
        #expect(reply.view.isError && reply.view.text.hasPrefix("NOAUTH"), "PING without AUTH answered '\(reply.view.text)'")
        // redis-cli, as another program would.
        if let cli = ["/usr/bin/redis-cli", "/usr/local/bin/redis-cli"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: cli)
            process.arguments = ["-s", server.socketPath, "PING"]
            let out = Pipe()
            process.standardOutput = out
            process.standardError = out
            try process.run()
            process.waitUntilExit()
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            #expect(text.contains("NOAUTH"), "redis-cli without the password got '\(text)'")
        }
        // The password: 64 hex digits, nowhere in the server's command line or in its folder.
        #expect(server.password.count == 64 && server.password.allSatisfy(\.isHexDigit))
        let pid = try #require(server.pid)
        let commandLine = try String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .isoLatin1)
        #expect(!commandLine.contains(server.password), "the password shows in ps")
        for name in try FileManager.default.contentsOfDirectory(atPath: server.directory) where name != "redis.sock" {
            let text = try String(contentsOfFile: server.directory + "/" + name, encoding: .isoLatin1)
            #expect(!text.contains(server.password), "the password is written in \(name)")
        }
        // Two servers, two passwords.
        let other = try RedisServerProcess()
        #expect(other.password != server.password && other.socketPath != server.socketPath)
    }

    @Test("the launcher passes our environment to the child, less the passwords meant for other Redis servers")
    func launcherEnvironment() throws {
        // redis-server overwrites its environment with its process title, so look with env(1).
        setenv("USERSWAP_REDIS_PASSWORD", "another-servers-password", 1)
        defer { unsetenv("USERSWAP_REDIS_PASSWORD") }
        let output = Pipe()
        let out = output.fileHandleForWriting.fileDescriptor
        let pid = try ParentDeathLauncher.shared.spawn("/usr/bin/env", arguments: [], stdin: 0, stdout: out, stderr: out)
        try output.fileHandleForWriting.close()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        #expect(text.contains("PATH=") && !text.contains("another-servers-password"), "\(text)")
    }

    @Test("its socket and log are in a folder of mode 0700 owned by us, removed when the server goes")
    func privateFolder() throws {
        var directory = ""
        do {
            let server = try RedisServerProcess()
            directory = server.directory
            var info = stat()
            #expect(lstat(server.directory, &info) == 0)
            #expect(info.st_mode & S_IFMT == S_IFDIR && info.st_mode & 0o777 == 0o700 && info.st_uid == geteuid())
            #expect(server.socketPath.hasPrefix(server.directory + "/") && server.logPath.hasPrefix(server.directory + "/"))
            #expect(lstat(server.logPath, &info) == 0 && info.st_mode & 0o077 == 0, "the log is readable by others")
        }
        var info = stat()
        #expect(lstat(directory, &info) != 0, "\(directory) is left behind")
    }

    @Test("the server dies with the process that started it, even SIGKILLed; the next start removes the folder it left")
    func diesWithParent() async throws {
        let record = NSTemporaryDirectory() + "userswap-test-redis-parent-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { _ = unlink(record) }
        setenv("USERSWAP_TEST_REDIS_RECORD", record, 1)
        // A child process starts a server, writes down its pid and folder, and kills itself.
        await #expect(processExitsWith: .signal(SIGKILL)) {
            let server = try RedisServerProcess()
            let path = String(cString: getenv("USERSWAP_TEST_REDIS_RECORD"))
            try "\(server.pid!) \(server.directory)".write(toFile: path, atomically: true, encoding: .utf8)
            kill(getpid(), SIGKILL)
        }
        let fields = try String(contentsOfFile: record, encoding: .utf8).split(separator: " ")
        let pid = try #require(Int32(fields[0]))
        let directory = String(fields[1])
        var gone = false
        for _ in 0..<200 where !gone {
            gone = Self.isGone(pid)
            if !gone { usleep(10_000) }
        }
        #expect(gone, "redis-server \(pid) outlived the process that started it")
        // Its folder (a socket and a log, no pages) stays until the next server starts.
        _ = try RedisServerProcess()
        var info = stat()
        #expect(lstat(directory, &info) != 0, "the abandoned folder \(directory) was not removed")
    }

    // MARK: Helpers

    /// The inodes of the sockets process `pid` holds (`socket:[N]` links under /proc/PID/fd).
    static func socketInodes(of pid: Int32) -> Set<String> {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
        var inodes = Set<String>()
        for fd in fds {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)"),
                target.hasPrefix("socket:[")
            else { continue }
            inodes.insert(String(target.dropFirst("socket:[".count).dropLast()))
        }
        return inodes
    }

    /// The inode column of a /proc/net table (tcp, tcp6: the 10th field; unix: the 7th).
    static func inodes(inTable path: String) -> Set<String> {
        guard let text = ProcFile.text(path) else { return [] }
        let column = path.hasSuffix("unix") ? 6 : 9
        return Set(
            text.split(separator: "\n").dropFirst().compactMap { line in
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                return fields.count > column ? String(fields[column]) : nil
            })
    }

    /// True once `pid` no longer runs: gone, or a zombie nobody reaped yet.
    static func isGone(_ pid: Int32) -> Bool {
        guard let stat = ProcFile.text("/proc/\(pid)/stat"),
            let close = stat.lastIndex(of: ")")
        else { return true }
        return stat[stat.index(close, offsetBy: 2)] == "Z"
    }
}
