import Testing

@testable import UserSwapBench

extension CLI {
    @Suite("Process memory as top sees it")
    struct ProcessMemoryTests {
        static let status = """
            Name:\tuserswap
            VmPeak:\t  912344 kB
            VmHWM:\t  300100 kB
            VmRSS:\t  290000 kB
            RssAnon:\t   40000 kB
            RssFile:\t   12000 kB
            RssShmem:\t  238000 kB
            Threads:\t7
            """

        @Test("the resident set, its split and its high-water mark come from /proc/self/status")
        func parsesStatus() throws {
            let memory = try #require(ProcessMemory.parse(status: Self.status))
            #expect(memory.peakBytes == 300_100 * 1024 && memory.rssBytes == 290_000 * 1024)
            #expect(memory.anonBytes == 40_000 * 1024 && memory.fileBytes == 12_000 * 1024 && memory.shmemBytes == 238_000 * 1024)
            #expect(ProcessMemory.parse(status: "Name:\tx\nVmRSS:\t1 kB\n") == nil)
        }

        @Test("this process's resident set adds up to its split, below its high-water mark")
        func readsItself() throws {
            let memory = try #require(ProcessMemory.now())
            #expect(memory.anonBytes + memory.fileBytes + memory.shmemBytes == memory.rssBytes)
            #expect(memory.rssBytes > 0 && memory.rssBytes <= memory.peakBytes)
        }

        @Test("a report gets peak_rss_bytes and the split at the sampled peak, and keeps what a scenario wrote")
        func addsToReports() throws {
            let peak = try #require(ProcessMemory.parse(status: Self.status))
            var report = BenchReport(scenario: "zipf", threads: 1, ops: 0, seconds: 0, machine: .current())
            report.addProcessMemory(sampledPeak: peak, now: peak)
            #expect(report.extras["peak_rss_bytes"] == JSONValue(Int64(300_100 * 1024)))
            guard case .object(let split)? = report.extras["rss_bytes"] else {
                Issue.record("no rss_bytes")
                return
            }
            #expect(split["shmem"] == JSONValue(Int64(238_000 * 1024)))
            var later = peak
            later.peakBytes = 1
            report.addProcessMemory(now: later)
            #expect(report.extras["peak_rss_bytes"] == JSONValue(Int64(300_100 * 1024)))
        }
    }
}
