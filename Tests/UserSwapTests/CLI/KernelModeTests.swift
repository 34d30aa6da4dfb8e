import Testing
import UserSwap

@testable import UserSwapBench
@testable import UserSwapCLI

extension CLI {
    /// `--mode kernel`: the workloads over plain anonymous memory, and what the benchmark reads
    /// from the memory cgroup, /proc/vmstat and /proc/swaps (parsed as pure functions here).
    @Suite("Kernel mode")
    struct KernelModeTests {
        static let hybridMounts = """
            tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
            cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
            cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
            cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
            """
        static let hybridCgroup = """
            9:name=systemd:/
            4:memory:/userswap-compare-123
            1:cpu:/
            0::/
            """

        @Test("on a hybrid machine the v1 memory hierarchy comes first, then the unified one")
        func hybridCandidates() {
            let found = MemoryCgroup.candidates(procSelfCgroup: Self.hybridCgroup, mounts: Self.hybridMounts)
            #expect(
                found == [
                    MemoryCgroup(version: .v1, path: "/userswap-compare-123", directory: "/sys/fs/cgroup/memory/userswap-compare-123"),
                    MemoryCgroup(version: .v2, path: "/", directory: "/sys/fs/cgroup/unified"),
                ])
            #expect(found[0].files.limit == "memory.limit_in_bytes")
            #expect(found[0].files.peak == "memory.max_usage_in_bytes")
        }

        @Test("on a v2-only machine the one candidate is the unified hierarchy, path included")
        func v2Candidates() {
            let found = MemoryCgroup.candidates(
                procSelfCgroup: "0::/system.slice/userswap-compare-7:x\n",
                mounts: "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime 0 0\n")
            #expect(
                found == [
                    MemoryCgroup(
                        version: .v2, path: "/system.slice/userswap-compare-7:x",
                        directory: "/sys/fs/cgroup/system.slice/userswap-compare-7:x")
                ])
            #expect(found[0].files.limit == "memory.max")
            #expect(found[0].files.peak == "memory.peak")
        }

        @Test("no memory controller mounted: no candidate")
        func noController() {
            let found = MemoryCgroup.candidates(procSelfCgroup: "4:memory:/a\n", mounts: "cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n")
            #expect(found.isEmpty)
        }

        @Test(
            "limits: bytes; 'max' and v1's page-rounded LONG_MAX are unlimited",
            arguments: [
                ("67108864\n", Int64?.some(67_108_864)), ("max\n", nil), ("9223372036854771712\n", nil), ("garbage", nil),
            ])
        func limits(text: String, expected: Int64?) {
            #expect(MemoryCgroup.limit(text) == expected)
        }

        @Test("memory.stat and /proc/vmstat parse as key-value pairs")
        func stat() {
            let values = MemoryCgroup.stat("cache 9465856\nrss 5828608\npswpin 12\nbad line here\nempty\n")
            #expect(values == ["cache": 9_465_856, "rss": 5_828_608, "pswpin": 12])
        }

        @Test("swap counters come from the cgroup's memory.stat when it has them, else from /proc/vmstat")
        func counterSources() {
            let vmstat: [String: Int64] = ["pswpin": 1000, "pswpout": 2000]
            let own = KernelSwapProbe.counters(cgroupStat: ["pswpin": 3, "pswpout": 4, "workingset_refault_anon": 5], vmstat: vmstat)
            #expect(own[.swapIns] == 3 && own[.swapOuts] == 4 && own[.refaults] == 5)
            #expect(own[.activations] == nil)
            let v1 = KernelSwapProbe.counters(cgroupStat: ["rss": 1, "workingset_refault_anon": 6], vmstat: vmstat)
            #expect(v1[.swapIns] == 1000 && v1[.swapOuts] == 2000 && v1[.refaults] == 6)
        }

        @Test("kernel samples subtract and add field by field")
        func samples() {
            let a = KernelSample(majorFaults: 10, machineSwapIns: 100, machineSwapOuts: 1000)
            let b = KernelSample(majorFaults: 15, machineSwapIns: 130, machineSwapOuts: 1001)
            #expect(b - a == KernelSample(majorFaults: 5, machineSwapIns: 30, machineSwapOuts: 1))
            #expect((b - a) + (b - a) == KernelSample(majorFaults: 10, machineSwapIns: 60, machineSwapOuts: 2))
        }

        @Test("/proc/swaps: the header is skipped, sizes are KiB")
        func swaps() {
            let text = """
                Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority
                /tmp/userswap-compare-1.swap            file\t\t393212\t\t0\t\t32767
                /dev/zram0                              partition\t1048572\t\t12\t\t-2
                """
            let expected: [WorkloadBench.SwapDeviceLine] = [
                .init(path: "/tmp/userswap-compare-1.swap", type: "file", sizeBytes: 402_649_088, priority: 32767),
                .init(path: "/dev/zram0", type: "partition", sizeBytes: 1_073_737_728, priority: -2),
            ]
            #expect(WorkloadBench.parseSwaps(text) == expected)
            #expect(WorkloadBench.parseSwaps("Filename Type Size Used Priority\n").isEmpty)
        }

        @Test("every workload runs on plain anonymous memory and verifies", arguments: WorkloadKind.allCases)
        func anonymousMemory(kind: WorkloadKind) throws {
            let configuration = WorkloadConfiguration(
                kind: kind, memoryBytes: 1 << 20, dataBytes: 4 << 20, threads: 2,
                limit: .operations(20_000), seed: 11)
            let run = try WorkloadSession.runOnKernelSwap(
                configuration, cgroup: nil, console: Workloads.quiet,
                showsProgress: false, label: "test")
            let outcome = run.outcome
            print("\(kind) on anonymous memory: \(outcome.measured.ops) ops, \(outcome.verificationLine)")
            #expect(outcome.verified, "\(outcome.verificationLine)")
            #expect(outcome.verifiedUnits == 1024)  // every page: written by each workload, or scanned
            // multiget does whole batches of 32: 10,000 keys per thread are 313 batches.
            if kind.isOpen { #expect(outcome.measured.ops == (kind == .multiget ? 2 * 313 * 32 : 20_000)) }
        }

        @Test("a page changed behind the workload's back in plain memory fails verification")
        func detectsCorruption() throws {
            let store = try AnonymousPageStore(pages: 64)
            let pages = PatternedPages(store: store, seed: 3)
            for page in 0..<64 { pages.write(page) }
            store.withPage(17, for: .write) { $0.storeBytes(of: 1, toByteOffset: 4088, as: UInt64.self) }
            #expect(pages.read(16, fully: true, ledger: pages.verification))
            #expect(!pages.read(17, fully: true, ledger: pages.verification))
            #expect(pages.verification.failures.first?.hasPrefix("page 17:") == true)
        }
    }
}
