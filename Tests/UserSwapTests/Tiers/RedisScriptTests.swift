import Foundation
import Glibc
import Testing

/// `scripts/redis` keeps its pid and log files in a folder only the user can enter, and kills
/// only its own redis-server.
@Suite("scripts/redis: private files, careful kills")
struct RedisScriptTests {
    /// The script, found from this file's place in the repository.
    static let script = TestProcess.repository + "/scripts/redis"

    /// Runs `scripts/redis ARGS` with TMPDIR = `tmpdir` and no other place to keep its files.
    static func run(_ arguments: [String], tmpdir: String) throws -> (status: Int32, output: String) {
        var environment = ProcessInfo.processInfo.environment
        environment["TMPDIR"] = tmpdir
        environment["XDG_RUNTIME_DIR"] = nil
        environment["USERSWAP_REDIS_DIR"] = nil
        return try TestProcess.run(script, arguments, environment: environment)
    }

    /// A private test folder (mkdtemp), removed afterwards.
    static func withFolder<T>(_ body: (String) throws -> T) throws -> T {
        var template = Array((FileManager.default.temporaryDirectory.path + "/userswap-redis-script-test-XXXXXX").utf8CString)
        try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) != nil })
        let folder = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        defer { try? FileManager.default.removeItem(atPath: folder) }
        return try body(folder)
    }

    /// The folder the script uses under `tmpdir`.
    static func privateFolder(_ tmpdir: String) -> String { "\(tmpdir)/userswap-redis-\(geteuid())" }

    @Test(
        "start keeps the pid and log in a 0700 folder of the user's; stop kills the server it started",
        .enabled(
            if: FileManager.default.isExecutableFile(atPath: "/usr/bin/redis-server"),
            "redis-server is not installed (scripts/bootstrap installs it)"))
    func startAndStop() throws {
        try Self.withFolder { tmpdir in
            let started = try Self.run(["start"], tmpdir: tmpdir)
            defer { _ = try? Self.run(["stop"], tmpdir: tmpdir) }
            try #require(started.status == 0, "\(started.output)")
            let port = try #require(
                started.output.split(separator: ":").last.map { String($0).trimmingCharacters(in: .whitespacesAndNewlines) })
            let folder = Self.privateFolder(tmpdir)
            var st = stat()
            #expect(lstat(folder, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR && st.st_mode & 0o777 == 0o700 && st.st_uid == geteuid())
            let names = (try? FileManager.default.contentsOfDirectory(atPath: folder).sorted()) ?? []
            #expect(names == ["redis-\(port).log", "redis-\(port).pid"], "\(names)")
            #expect((try? FileManager.default.contentsOfDirectory(atPath: tmpdir)) == ["userswap-redis-\(geteuid())"])
            let stopped = try Self.run(["stop", port], tmpdir: tmpdir)
            #expect(stopped.status == 0 && stopped.output.contains("stopped redis-server"), "\(stopped.output)")
        }
    }

    @Test("stop refuses to kill a process that is not its redis-server, whatever the pid file says")
    func stopChecksThePid() throws {
        try Self.withFolder { tmpdir in
            let folder = Self.privateFolder(tmpdir)
            #expect(mkdir(folder, 0o700) == 0)
            // Ours, but not redis-server: a stale pid file whose number was reused.
            let victim = Process()
            victim.executableURL = URL(fileURLWithPath: "/bin/sleep")
            victim.arguments = ["30"]
            try victim.run()
            defer {
                kill(victim.processIdentifier, SIGKILL)
                victim.waitUntilExit()
            }
            try "\(victim.processIdentifier)\n".write(toFile: folder + "/redis-6999.pid", atomically: true, encoding: .utf8)
            let stopped = try Self.run(["stop", "6999"], tmpdir: tmpdir)
            #expect(
                stopped.output.contains("is not our redis-server on port 6999") && stopped.output.contains("not killed"),
                "\(stopped.output)")
            #expect(victim.isRunning, "the script killed a process that was not its server")
            #expect(!FileManager.default.fileExists(atPath: folder + "/redis-6999.pid"), "the stale pid file stays")
            // A pid file holding something other than a number.
            try "1; rm -rf /\n".write(toFile: folder + "/redis-6998.pid", atomically: true, encoding: .utf8)
            let odd = try Self.run(["stop", "6998"], tmpdir: tmpdir)
            #expect(odd.output.contains("not killed"), "\(odd.output)")
        }
    }

    @Test("a folder that is a link, someone else's, or open to others is refused, saying what to do")
    func refusesUnsafeFolders() throws {
        try Self.withFolder { tmpdir in
            let folder = Self.privateFolder(tmpdir)
            // Others may enter it.
            #expect(mkdir(folder, 0o755) == 0 && chmod(folder, 0o755) == 0)
            let open = try Self.run(["status"], tmpdir: tmpdir)
            #expect(open.status == 1 && open.output.contains("chmod 700 \(folder)"), "\(open.output)")
            // Someone else's.
            if geteuid() == 0 {
                #expect(chmod(folder, 0o700) == 0 && chown(folder, 65534, 65534) == 0)
                let theirs = try Self.run(["stop"], tmpdir: tmpdir)
                #expect(theirs.status == 1 && theirs.output.contains("belongs to user 65534"), "\(theirs.output)")
            }
            // A link to a folder of ours.
            #expect(rmdir(folder) == 0)
            let elsewhere = tmpdir + "/elsewhere"
            #expect(mkdir(elsewhere, 0o700) == 0 && symlink(elsewhere, folder) == 0)
            let linked = try Self.run(["status"], tmpdir: tmpdir)
            #expect(linked.status == 1 && linked.output.contains("symbolic link"), "\(linked.output)")
        }
    }
}
