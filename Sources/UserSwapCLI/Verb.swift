import UserSwapBench

/// The first word of a `userswap` command line.
public enum Verb: String, CaseIterable, Sendable {
    case format
    case inspect
    case run
    case exec
    case bench
    case redisClean = "redis-clean"
    case help

    /// The one-line synopsis printed with every usage error and at the top of the verb's help.
    public var usageLine: String {
        switch self {
        case .format: "usage: userswap format FILE --size SIZE [--label LABEL] [--force] [--write-out]"
        case .inspect: "usage: userswap inspect FILE [--json]"
        case .run:
            "usage: userswap run [--workload zipf|random|seq|usemem|hashtable|multiget] [--memory SIZE] [--data SIZE] [--threads N] [--ops N | --seconds S] [options]"
        case .exec:
            "usage: userswap exec [--memory SIZE] [--swap-size SIZE] [--swap-dir DIR | --device FILE|URL] [--group-limit memory=SIZE,swap=SIZE] [--report FILE] [--quiet] -- CMD ARGS…"
        case .bench:
            "usage: userswap bench SCENARIO [--json [FILE]] [--threads N] [--seconds S] [--protocol swapcache|legacy|legacy-wq|legacy-bypass|both|all] [options]"
        case .redisClean: "usage: userswap redis-clean URL --namespace NAMESPACE"
        case .help: "usage: userswap help [VERB]"
        }
    }

    /// What the verb does, one line, for the verb list in `userswap help`.
    var summary: String {
        switch self {
        case .format: "create a swap file (like mkswap)"
        case .inspect: "print a swap file's header and check it"
        case .run: "the main job: a workload on swappable data larger than its RAM budget, verified"
        case .exec: "run an unmodified program with its heap under a RAM budget, swapping to a file of yours (no root)"
        case .bench: "run a benchmark scenario (release builds only)"
        case .redisClean: "delete the pages a killed process left on a Redis server (one namespace)"
        case .help: "show help for userswap or one verb"
        }
    }

    /// The options this verb accepts; the parser and the help text both read this table.
    var options: [OptionSpec] {
        switch self {
        case .format:
            [
                OptionSpec("size", value: .required("SIZE"), help: "size of the file, e.g. 256M, 1.5G, 1073741824 (required)"),
                OptionSpec("label", value: .required("LABEL"), help: "a label stored in the header (at most 16 bytes)"),
                OptionSpec("force", help: "overwrite FILE if it exists"),
                OptionSpec(
                    "write-out",
                    help:
                        "write every block once (zeros): swap-out then overwrites written blocks, faster on ext4 and xfs; costs one write of SIZE now"
                ),
            ]
        case .inspect:
            [OptionSpec("json", help: "print the report as JSON on stdout")]
        case .run:
            [
                OptionSpec("workload", value: .required("W"), help: "zipf (default), random, seq, usemem, hashtable or multiget"),
                OptionSpec("memory", value: .required("SIZE"), help: "RAM budget (default 256M)"),
                OptionSpec("data", value: .required("SIZE"), help: "the workload's data (default 1G): larger than the budget, so it swaps"),
                OptionSpec("threads", value: .required("N"), help: "worker threads (default 2)"),
                OptionSpec("ops", value: .required("N"), help: "accesses in the timed phase, over all threads (zipf, random, seq)"),
                OptionSpec("seconds", value: .required("S"), help: "length of the timed phase (default 20; zipf, random, seq)"),
                OptionSpec(
                    "swap", value: .required("FILE"),
                    help:
                        "swap file, created if missing and kept; an existing one must be yours, mode 0600, not a link (default: an unnamed temporary one, twice the data)"
                ),
                OptionSpec(
                    "dir", value: .required("DIR"), help: "folder for the unnamed swap file (default: TMPDIR, else /tmp); it must exist"),
                OptionSpec(
                    "protocol", value: .required("P"), help: "swap-in protocol: swapcache (default), legacy, legacy-wq or legacy-bypass"),
                OptionSpec(
                    "mode", value: .required("M"), help: "explicit (default: pins) or transparent (plain loads and stores, userfaultfd)"),
                OptionSpec(
                    "policy", value: .required("P"),
                    help:
                        "reclaim policy: frequency (default: evicts the least used), workingset (the kernel's lists), active-inactive, second-chance"
                ),
                OptionSpec(
                    "faults", value: .required("F"),
                    help: "transparent mode: handler-threads (default) or faulting-thread (faster; syscalls into unmapped pages get EFAULT)"
                ),
                OptionSpec("write-ratio", value: .required("R"), help: "fraction of accesses that write (default 0.2; zipf, random, seq)"),
                OptionSpec("seed", value: .required("N"), help: "seed of the access sequences and page patterns, to repeat a run"),
                OptionSpec("json", value: .optional("FILE"), help: "also write the report as JSON to FILE; alone or `-`: to stdout"),
                OptionSpec("no-progress", help: "draw no progress bar or progress lines"),
                OptionSpec(
                    "no-encryption",
                    help:
                        "write pages to the swap file in clear (default: sealed with XChaCha20-Poly1305 under a random key that lives only in this process)"
                ),
            ]
        case .exec:
            [
                OptionSpec("memory", value: .required("SIZE"), help: "RAM budget of the program's heap (default 256M)"),
                OptionSpec(
                    "swap-size", value: .required("SIZE"),
                    help: "swap behind the budget (default 8 × memory); the heap holds at most memory + swap"),
                OptionSpec(
                    "swap-dir", value: .required("DIR"),
                    help: "folder for the unnamed swap file (default: TMPDIR, else /tmp); the file is gone from the disk at once"),
                OptionSpec(
                    "device", value: .required("D"),
                    help:
                        "a named swap file (created if missing, kept), or redis://HOST:PORT or unix:///SOCKET (the password from USERSWAP_REDIS_PASSWORD)"
                ),
                OptionSpec(
                    "group-limit", value: .required("KEY=SIZE"), repeatable: true,
                    help:
                        "limits of the program's memory group, as a cgroup's: memory=SIZE (memory.max: its RAM, at most --memory) and swap=SIZE (memory.swap.max: its swap; --swap-size defaults to it), `max` for none; past them malloc fails with ENOMEM"
                ),
                OptionSpec("report", value: .required("FILE"), help: "write a JSON report at exit (docs/BENCH-JSON.md's keys)"),
                OptionSpec("quiet", help: "no summary line on stderr at exit"),
                OptionSpec("no-encryption", help: "write pages to swap in clear (default: sealed under a random key in RAM only)"),
            ]
        case .help:
            []
        case .redisClean:
            [
                OptionSpec(
                    "namespace", value: .required("NAMESPACE"),
                    help: "the namespace whose keys to delete (required): letters, digits and -_.: as the run logged it")
            ]
        case .bench:
            [
                OptionSpec(
                    "json", value: .optional("FILE"), help: "write the JSON report to FILE (its folder must exist); alone or `-`: to stdout"
                ),
                OptionSpec("threads", value: .required("N"), help: "worker threads (default: the scenario's; some sweep several counts)"),
                OptionSpec("seconds", value: .required("S"), help: "length of each timed phase in seconds, e.g. 3 or 0.5"),
                OptionSpec(
                    "protocol", value: .required("P"),
                    help:
                        "swap-in protocol: swapcache (default), legacy, legacy-wq, legacy-bypass; both (swapcache and legacy) or all, side by side, as ratios"
                ),
                OptionSpec("mode", value: .required("M"), help: "explicit (default), transparent or kernel"),
                OptionSpec("memory", value: .required("SIZE"), help: "RAM budget, e.g. 256M"),
                OptionSpec("data", value: .required("SIZE"), help: "working set, e.g. 1G"),
                OptionSpec("iterations", value: .required("N"), help: "timed iterations where the scenario repeats a fixed job"),
                OptionSpec("warmup", value: .required("N"), help: "untimed warm-up iterations"),
                OptionSpec("seed", value: .required("N"), help: "seed for the scenario's random generator, to repeat a run"),
                OptionSpec("dir", value: .required("DIR"), help: "an existing folder for swap files (default: a fresh temporary folder)"),
                OptionSpec(
                    "tier", value: .required("T"),
                    help: "workloads: none (default), compressed, encrypted or compressed+encrypted over the device"),
                OptionSpec(
                    "device", value: .required("D"),
                    help:
                        "workloads: file (default), memory, redis (a private server), redis://HOST:PORT, unix:///SOCKET or redis+cluster://HOST:PORT[,HOST:PORT…] (a Redis Cluster; --param durability=primary|replicated) (the password from USERSWAP_REDIS_PASSWORD: a password in the URL shows in ps)"
                ),
                OptionSpec("param", value: .required("KEY=VALUE"), repeatable: true, help: "a scenario-specific setting; may be repeated"),
                OptionSpec("no-progress", help: "draw no progress bar or progress lines"),
                OptionSpec(
                    "no-encryption",
                    help:
                        "swap devices get pages in clear (default: sealed under a random per-space key); for comparisons with the kernel's swap"
                ),
                OptionSpec("list", help: "list the scenarios, one per line, and exit"),
            ]
        }
    }

    /// Names of the positional arguments, for messages ("missing FILE").
    var positionals: [String] {
        switch self {
        case .format, .inspect: ["FILE"]
        case .bench: ["SCENARIO"]
        case .redisClean: ["URL"]
        case .run: []
        case .exec: ["CMD"]
        case .help: ["VERB"]
        }
    }
}

/// One option a verb accepts: always a kebab-case long name (`--no-progress`), sometimes a short
/// letter, and the kind of value it takes.
struct OptionSpec: Sendable {
    enum Value: Sendable, Equatable {
        /// A flag: `--force`. `--force=x` is a usage error.
        case none
        /// `--size 1G` or `--size=1G`; the placeholder names the value in help text.
        case required(String)
        /// `--json FILE`, `--json=FILE`, or `--json` alone when the next word is missing or is
        /// an option.
        case optional(String)
    }

    let name: String
    let short: Character?
    let value: Value
    let repeatable: Bool
    let help: String

    init(_ name: String, short: Character? = nil, value: Value = .none, repeatable: Bool = false, help: String) {
        self.name = name
        self.short = short
        self.value = value
        self.repeatable = repeatable
        self.help = help
    }

    /// `--size SIZE`, `--json [FILE]`, `--force`.
    var synopsis: String {
        switch value {
        case .none: "--\(name)"
        case .required(let placeholder): "--\(name) \(placeholder)"
        case .optional(let placeholder): "--\(name) [\(placeholder)]"
        }
    }
}
