import UserSwapBench

/// The text of `userswap help` and `userswap help VERB`, built from the same option tables the
/// parser reads, so the two never disagree.
enum HelpText {
    static var general: String {
        let width = Verb.allCases.map(\.rawValue.count).max() ?? 0
        let verbs = Verb.allCases.map { "  \($0.rawValue.padded(to: width))  \($0.summary)" }
        return """
            userswap: swappable memory for Swift programs (a user-space swap with Linux's swap-table design)

            \(CommandLineTool.usageLine)

            verbs:
            \(verbs.joined(separator: "\n"))

            Sizes take binary suffixes: 4096, 64K, 256M, 1.5G, 2T (1K = 1024 bytes).
            Run `userswap help VERB` or `userswap VERB --help` for a verb's options.
            Exit status: 0 success, 1 failure, 64 usage error.

            """
    }

    static func verb(_ verb: Verb) -> String {
        var text = verb.usageLine + "\n\n" + description(verb) + "\n"
        let options = verb.options
        if !options.isEmpty {
            let rows = options.map { ($0.synopsis, $0.help) } + [("-h, --help", "show this help")]
            let width = rows.map(\.0.count).max() ?? 0
            text += "\noptions:\n"
            for (synopsis, help) in rows {
                text += "  \(synopsis.padded(to: width))  \(help)\n"
            }
        }
        if verb == .bench {
            text += "\nscenarios:\n"
            let scenarios = BenchRegistry.listed
            if scenarios.isEmpty {
                text += "  (none yet)\n"
            }
            let width = scenarios.map { $0.name.count }.max() ?? 0
            for scenario in scenarios {
                text += "  \(scenario.name.padded(to: width))  \(scenario.summary)\n"
            }
            text += "\nparameters (--param KEY=VALUE), by scenario:\n"
            for scenario in scenarios {
                text += scenarioParameters(scenario)
            }
        }
        let examples = self.examples(verb)
        if !examples.isEmpty {
            text += "\nexamples:\n" + examples.map { "  \($0)\n" }.joined()
        }
        return text
    }

    private static func description(_ verb: Verb) -> String {
        switch verb {
        case .format:
            """
            Creates FILE as a swap file of SIZE bytes in Linux's format (version 1, 4 KiB pages),
            readable by mkswap -c and swapon, and by UserSwap's devices. An existing FILE is kept
            unless --force is given. Its blocks are allocated up front; --write-out also writes
            them once, so that swap-out overwrites written blocks instead of converting
            unwritten extents (ext4, xfs): faster swap-out from the first page, for one write of
            the whole file now.
            """
        case .inspect:
            """
            Reads FILE's header, checks it (signature, version, page size, bad-page list) and
            prints what it found; --json prints the same report as JSON.
            """
        case .run:
            """
            The main job: runs a workload on swappable data larger than its RAM budget (by default
            Zipf θ=0.99 over 1 GiB in 256 MiB, 2 threads, 20 s of accesses, 20 % writes), swapping
            to a file in $TMPDIR that has no name (O_TMPFILE): nothing is left on disk, even if the
            run is killed; SIGINT, SIGTERM and SIGHUP exit 130, 143 and 129. A progress line shows
            ops/s, resident memory and swap traffic; the report gives operations per second,
            per-access latency (p50, p99, p99.9), swap-ins and -outs, refaults and activations,
            the peak resident memory, and a verification: every page the workload touched is read
            back and checked (exit status 1 if one is wrong).

            Workloads: zipf (a few hot pages take most accesses), random (uniform), seq (sequential,
            wrapping), usemem (the kernel test: write all the data, then read it all back),
            hashtable (an open-addressing table of UInt64 keys the size of --data, half full:
            insert every key, then look each up) and multiget (the same table filled in page order,
            then random keys looked up in batches of 32, each batch's pages prefetched first).
            usemem and hashtable are fixed jobs.
            """
        case .exec:
            """
            Runs CMD, unmodified, with its heap (malloc and its family, and large anonymous mmap
            calls) in UserSwap's memory: at most --memory of it in RAM, the rest in a swap file
            of yours, gone from the disk at once. No root and no swapon: the program's own
            userfaultfd serves it. The program keeps this process's id and exit status; at exit
            a line on stderr gives the peak RSS, swap-ins and -outs, faults, the time the
            program's threads waited in them, and the engine's CPU time (--report FILE: as
            JSON). --group-limit holds the program's group to a cgroup's memory.max and
            memory.swap.max: past them malloc fails with ENOMEM. Statically linked programs and
            runtimes with their own heap (Go, the JVM) are refused. A child made by fork may
            exec, but not use the heap without exec (it is stopped, with a message); programs it
            runs start without the preload library. docs/EXEC.md says more.
            """
        case .bench:
            """
            Runs a benchmark scenario: warm-up, timed phases, latency histograms. Prints a summary;
            --json writes the report as JSON (scenario, ops_per_s, latency_us, peak_resident_bytes,
            machine, …; sorted keys). --protocol both (swapcache and legacy) or all (and legacy-wq,
            legacy-bypass) runs the scenario once per protocol and reports the swap cache against
            each, as ratios (bigger is better). Needs a release build:
            `make bench`, or `swift build -c release`.
            """
        case .redisClean:
            """
            Deletes every key of NAMESPACE on the Redis server at URL (SCAN, then UNLINK) and
            prints how many: the pages a run swapped to that server and could not delete because
            it was killed (a run that ends normally deletes its own). Runs log their namespace
            when they swap to a server of yours; the private server of --device redis dies with
            its run and needs no cleaning. Use it only for a namespace no running process uses.
            URL is redis://HOST:PORT[/DB], unix:///SOCKET or redis+cluster://HOST:PORT[,…]
            (every master of the cluster); a password comes from USERSWAP_REDIS_PASSWORD (a
            password in the URL shows in ps).
            """
        case .help:
            "Shows the verbs, or one verb's options."
        }
    }

    private static func examples(_ verb: Verb) -> [String] {
        switch verb {
        case .format:
            ["userswap format /var/tmp/swap0 --size 1G", "userswap format swap.img --size 256M --label fast --force"]
        case .inspect:
            ["userswap inspect /var/tmp/swap0", "userswap inspect swap.img --json"]
        case .run:
            [
                "userswap run",
                "userswap run --workload hashtable --memory 64M --data 256M",
                "userswap run --workload random --seconds 5 --threads 4 --json run.json",
            ]
        case .exec:
            [
                "userswap exec --memory 512M -- python3 job.py",
                "userswap exec --memory 1G --swap-dir /var/tmp --report run.json -- sort -S 4G big.txt -o sorted.txt",
                "userswap exec --memory 256M --group-limit memory=128M,swap=2G -- ./job",
            ]
        case .bench:
            [
                "userswap bench alloc --json bench/results/alloc.json",
                "userswap bench race --threads 8 --seconds 5 --protocol both --json",
                "userswap bench --list",
            ]
        case .redisClean:
            ["USERSWAP_REDIS_PASSWORD=… userswap redis-clean redis://10.0.0.2:6379 --namespace userswap-4242-1f2e3d4c"]
        case .help:
            ["userswap help format"]
        }
    }

    /// A scenario's `--param`s, one per line under its name (with `--mode kernel`'s apart
    /// when they differ); nothing for a scenario that takes none.
    static func scenarioParameters(_ scenario: any BenchScenario.Type) -> String {
        var text = ""
        func rows(_ parameters: [BenchParameter], heading: String) {
            guard !parameters.isEmpty else { return }
            text += "  \(heading):\n"
            for p in parameters {
                text += "    \(p.synopsis)\n        \(p.summary)\n"
            }
        }
        let usual = scenario.parameters(mode: nil)
        rows(usual, heading: scenario.name)
        let kernel = scenario.parameters(mode: .kernel)
        if kernel.map(\.key) != usual.map(\.key) { rows(kernel, heading: "\(scenario.name) --mode kernel") }
        return text
    }
}
