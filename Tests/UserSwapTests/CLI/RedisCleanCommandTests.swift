import Foundation
import Glibc
import Testing

@testable import UserSwap
@testable import UserSwapBench
@testable import UserSwapCLI
@testable import UserSwapRedis

extension CLI {
    /// `userswap redis-clean URL --namespace N` against a real server (`RedisServerProcess`).
    @Suite("redis-clean", .serialized)
    struct RedisCleanCommandTests {
        @Test(
            "deletes every key of the namespace, prints the count, and leaves other namespaces and keys alone",
            .enabled(if: RedisServerProcess.executable != nil, "no redis-server binary (scripts/bootstrap installs it)"))
        func cleans() throws {
            let server = try RedisServerProcess()
            // A run that was killed: its backend wrote pages and never deleted them.
            var configuration = server.configuration
            configuration.namespace = "killed-run-1"
            let killed = try RedisBackend(pageCount: 1 + 2 * 512, configuration: configuration)
            configuration.namespace = "still-running"
            let alive = try RedisBackend(pageCount: 1 + 512, configuration: configuration)
            let pages = UnsafeMutableRawBufferPointer.allocate(byteCount: 600 * SwapPage.size, alignment: SwapPage.size)
            defer { pages.deallocate() }
            pages.initializeMemory(as: UInt8.self, repeating: 7)
            try killed.write(UnsafeRawBufferPointer(pages), atPage: 1)  // 600 keys over two key groups
            try alive.write(UnsafeRawBufferPointer(rebasing: pages[0..<3 * SwapPage.size]), atPage: 1)
            #expect(try killed.serverStatus().keys == 603)

            setenv("USERSWAP_REDIS_PASSWORD", server.password, 1)
            defer { unsetenv("USERSWAP_REDIS_PASSWORD") }
            let first = runTool(["redis-clean", server.url, "--namespace", "killed-run-1"])
            #expect(first.status == 0, "\(first.stderr)")
            #expect(first.stdout == "removed 600 keys of namespace 'killed-run-1' from \(server.url)\n")
            #expect(try alive.serverStatus().keys == 3, "another namespace's keys were deleted")
            // Again: nothing left to remove.
            let again = runTool(["redis-clean", server.url, "--namespace", "killed-run-1"])
            #expect(again.status == 0 && again.stdout.hasPrefix("removed 0 keys"))
            // The password never printed.
            #expect(![first.stdout, first.stderr, again.stdout, again.stderr].joined().contains(server.password))
        }

        @Test(
            "without the password, or with no server there: exit 1 with a typed error that says what to do",
            .enabled(if: RedisServerProcess.executable != nil, "no redis-server binary (scripts/bootstrap installs it)"))
        func failures() throws {
            let server = try RedisServerProcess()
            unsetenv("USERSWAP_REDIS_PASSWORD")
            let refused = runTool(["redis-clean", server.url, "--namespace", "n"])
            #expect(refused.status == 1 && refused.stderr.contains("NOAUTH") && refused.stderr.contains("password"), "\(refused.stderr)")
            let port = try RedisServerProcess.freePort()
            let nobody = runTool(["redis-clean", "redis://127.0.0.1:\(port)", "--namespace", "n"])
            #expect(nobody.status == 1 && nobody.stderr.contains("is not answering"), "\(nobody.stderr)")
        }

        @Test("usage errors exit 64: no namespace, a namespace with glob characters, a URL that is not Redis, no URL")
        func usage() throws {
            let missing = try #require(usageError(["redis-clean", "redis://127.0.0.1:6379"]))
            #expect(missing.message.hasPrefix("redis-clean needs --namespace"))
            #expect(missing.exitCode == 64)
            #expect(try #require(usageError(["redis-clean", "redis://127.0.0.1", "--namespace", "*"])).message.contains("only letters"))
            #expect(
                try #require(usageError(["redis-clean", "http://x", "--namespace", "n"])).message.contains(
                    "is not a redis:// or unix:// URL"))
            #expect(usageError(["redis-clean", "--namespace", "n"]) != nil)
            let status = runTool(["redis-clean", "redis://127.0.0.1:6379"])
            #expect(status.status == 64 && status.stderr.contains("usage: userswap redis-clean URL --namespace NAMESPACE"))
            #expect(runTool(["help", "redis-clean"]).stdout.contains("USERSWAP_REDIS_PASSWORD"))
        }
    }
}
