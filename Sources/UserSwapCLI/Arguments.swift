import UserSwap
import UserSwapBench
import UserSwapRedis

/// The words after the verb, sorted into positionals and options by the verb's option table
/// (`Verb.options`), before any value is interpreted.
struct ParsedArguments: Equatable {
    var positionals: [String] = []
    /// Option name (without `--`) → its values in command-line order; `nil` for a flag or for an
    /// optional-value option given alone.
    var values: [String: [String?]] = [:]

    func has(_ name: String) -> Bool { values[name] != nil }

    /// The last value given for `name` (the usual "last one wins").
    func value(_ name: String) -> String? { values[name]?.last ?? nil }
}

/// The small command-line parser: `userswap <verb> [options]` with kebab-case long options. It
/// is pure (no I/O), so tests call it directly; every failure is a `UsageError`.
enum ArgumentParser {
    /// Splits `words` (everything after the verb) using `verb`'s option table.
    ///
    /// - `--name VALUE` and `--name=VALUE` for options that take a value;
    /// - `--json` alone when the next word is missing, or is an option (`--json --threads 2`);
    ///   `--json -` also means stdout;
    /// - `--` ends the options: every later word is positional;
    /// - `-` alone is positional.
    static func split(_ words: ArraySlice<String>, for verb: Verb) throws(UsageError) -> ParsedArguments {
        let table = verb.options
        var result = ParsedArguments()
        var index = words.startIndex
        var optionsEnded = false
        while index < words.endIndex {
            let word = words[index]
            index += 1
            if optionsEnded || word == "-" || !word.hasPrefix("-") {
                result.positionals.append(word)
                continue
            }
            if word == "--" {
                optionsEnded = true
                continue
            }
            guard word.hasPrefix("--") else {
                throw UsageError("unknown option '\(word)' for '\(verb.rawValue)'; options are long, like --size", verb: verb)
            }
            let body = word.dropFirst(2)
            let name: String
            var inlineValue: String?
            if let equals = body.firstIndex(of: "=") {
                name = String(body[..<equals])
                inlineValue = String(body[body.index(after: equals)...])
            } else {
                name = String(body)
            }
            guard let spec = table.first(where: { $0.name == name }) else {
                throw UsageError(unknownOptionMessage(name, verb: verb), verb: verb)
            }
            let value: String?
            switch spec.value {
            case .none:
                guard inlineValue == nil else {
                    throw UsageError("--\(name) takes no value", verb: verb)
                }
                value = nil
            case .required(let placeholder):
                if let inlineValue {
                    value = inlineValue
                } else if index < words.endIndex, !words[index].hasPrefix("--") {
                    value = words[index]
                    index += 1
                } else {
                    throw UsageError("--\(name) needs a value: --\(name) \(placeholder)", verb: verb)
                }
            case .optional:
                if let inlineValue {
                    value = inlineValue
                } else if index < words.endIndex, words[index] == "-" || !words[index].hasPrefix("-") {
                    value = words[index]
                    index += 1
                } else {
                    value = nil
                }
            }
            if !spec.repeatable, result.values[name] != nil {
                // The last one wins, as with most Unix tools; keep only it.
                result.values[name] = [value]
            } else {
                result.values[name, default: []].append(value)
            }
        }
        return result
    }

    /// "unknown option --szie for 'format'; did you mean --size?"
    private static func unknownOptionMessage(_ name: String, verb: Verb) -> String {
        let known = verb.options.map(\.name)
        var message = "unknown option '--\(name)' for '\(verb.rawValue)'"
        if let guess = known.min(by: { editDistance($0, name) < editDistance($1, name) }),
            editDistance(guess, name) <= 2
        {
            message += "; did you mean --\(guess)?"
        } else if known.isEmpty {
            message += "; it takes no options"
        }
        return message
    }

    /// Levenshtein distance, for "did you mean".
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in stride(from: 1, through: b.count, by: 1) {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            }
            previous = current
        }
        return previous[b.count]
    }

    // MARK: Values

    /// A whole number in `range`: `--threads 8`.
    static func integer(_ text: String, option: String, in range: ClosedRange<Int>, verb: Verb) throws(UsageError) -> Int {
        guard let value = Int(text.trimmingWhitespace()) else {
            throw UsageError("--\(option) '\(text)' is not a whole number", verb: verb)
        }
        guard range.contains(value) else {
            throw UsageError("--\(option) \(value) is out of range; use \(range.lowerBound)…\(range.upperBound)", verb: verb)
        }
        return value
    }

    /// A byte count with an optional binary suffix: `--size 1.5G`. `minimum` guards zero sizes.
    static func size(_ text: String, option: String, minimum: Int64 = 1, verb: Verb) throws(UsageError) -> Int64 {
        switch ByteSize.parse(text) {
        case .success(let bytes):
            guard bytes >= minimum else {
                throw UsageError("--\(option) \(text) is too small; it must be at least \(ByteSize.format(minimum))", verb: verb)
            }
            return bytes
        case .failure(let error):
            throw UsageError("--\(option): \(error)", verb: verb)
        }
    }

    /// A positive, finite number of seconds: `--seconds 0.5`.
    static func seconds(_ text: String, option: String, verb: Verb) throws(UsageError) -> Double {
        guard let value = Double(text.trimmingWhitespace()), value.isFinite else {
            throw UsageError("--\(option) '\(text)' is not a number of seconds", verb: verb)
        }
        guard value > 0, value <= 86_400 else {
            throw UsageError("--\(option) \(text) is out of range; use a number above 0 and at most 86400", verb: verb)
        }
        return value
    }

    /// One of a fixed set of words: `--mode explicit`.
    static func choice<T: RawRepresentable & CaseIterable>(
        _ text: String, option: String, verb: Verb
    ) throws(UsageError) -> T where T.RawValue == String {
        guard let value = T(rawValue: text) else {
            let words = T.allCases.map(\.rawValue).joined(separator: ", ")
            throw UsageError("--\(option) '\(text)' is not one of: \(words)", verb: verb)
        }
        return value
    }
}

extension CommandLineTool {
    /// Parses a command line (without the program name) into what to do. Pure: no I/O, no
    /// global state, so it is tested as a function.
    public static func parse(_ arguments: [String]) -> Result<Invocation, UsageError> {
        do throws(UsageError) {
            return .success(try parseOrThrow(arguments))
        } catch {
            return .failure(error)
        }
    }

    private static func parseOrThrow(_ arguments: [String]) throws(UsageError) -> Invocation {
        guard let first = arguments.first else {
            throw UsageError("missing verb")
        }
        // -h/--help anywhere before `--` wins over everything else, even a bad option, so that a
        // user in trouble always gets help.
        let beforeTerminator = arguments.prefix(while: { $0 != "--" })
        if beforeTerminator.contains(where: { $0 == "-h" || $0 == "--help" }) {
            if first == Verb.help.rawValue {
                return .help(arguments.dropFirst().first.flatMap { Verb(rawValue: $0) })
            }
            return .help(Verb(rawValue: first))
        }
        guard let verb = Verb(rawValue: first) else {
            if first.hasPrefix("-") {
                throw UsageError("'\(first)' is an option; the verb comes first: userswap VERB [options]")
            }
            throw UsageError("unknown verb '\(first)'; verbs: \(Verb.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if verb == .exec { return .exec(try parseExec(arguments.dropFirst())) }
        let parsed = try ArgumentParser.split(arguments.dropFirst(), for: verb)
        switch verb {
        case .exec:
            trap("exec is parsed above")
        case .help:
            return try parseHelp(parsed)
        case .format:
            return .format(try parseFormat(parsed))
        case .inspect:
            let path = try onePositional(parsed, verb: verb)
            return .inspect(InspectOptions(path: path, json: parsed.has("json")))
        case .run:
            return .run(try parseRun(parsed))
        case .bench:
            if parsed.has("list") {
                try expectPositionals(parsed, count: 0, verb: verb)
                return .listScenarios
            }
            return .bench(try parseBench(parsed))
        case .redisClean:
            return .redisClean(try parseRedisClean(parsed))
        }
    }

    /// `redis-clean URL --namespace N`: a URL the backend can parse, and a namespace always (a
    /// command that deletes keys never guesses which).
    private static func parseRedisClean(_ parsed: ParsedArguments) throws(UsageError) -> RedisCleanOptions {
        let verb = Verb.redisClean
        let url = try onePositional(parsed, verb: verb)
        do {
            if url.hasPrefix("redis+cluster://") {
                _ = try RedisClusterBackend.Configuration(url: url)
            } else {
                _ = try RedisBackend.Configuration(url: url)
            }
        } catch {
            throw UsageError(error.message, verb: verb)
        }
        guard let namespace = parsed.value("namespace") else {
            throw UsageError(
                "redis-clean needs --namespace NAMESPACE: the one the killed run logged (it deletes only that namespace's keys)", verb: verb
            )
        }
        guard RedisBackend.isValidNamespace(namespace) else {
            throw UsageError("--namespace '\(namespace)' may use only letters, digits and -_.: (1 to 100 characters)", verb: verb)
        }
        return RedisCleanOptions(url: url, namespace: namespace)
    }

    private static func parseHelp(_ parsed: ParsedArguments) throws(UsageError) -> Invocation {
        switch parsed.positionals.count {
        case 0:
            return .help(nil)
        case 1:
            guard let verb = Verb(rawValue: parsed.positionals[0]) else {
                throw UsageError(
                    "no help for '\(parsed.positionals[0])': it is not a verb; verbs: \(Verb.allCases.map(\.rawValue).joined(separator: ", "))",
                    verb: .help)
            }
            return .help(verb)
        default:
            throw UsageError("help takes one verb", verb: .help)
        }
    }

    private static func parseFormat(_ parsed: ParsedArguments) throws(UsageError) -> FormatOptions {
        let verb = Verb.format
        let path = try onePositional(parsed, verb: verb)
        guard let sizeText = parsed.value("size") else {
            throw UsageError("format needs the file's size: --size SIZE (e.g. --size 1G)", verb: verb)
        }
        // Zero and small sizes pass: the library says how large a swap file must be.
        let bytes = try ArgumentParser.size(sizeText, option: "size", minimum: 0, verb: verb)
        return FormatOptions(
            path: path, bytes: bytes, label: parsed.value("label") ?? "", force: parsed.has("force"),
            writeOut: parsed.has("write-out"))
    }

    private static func parseBench(_ parsed: ParsedArguments) throws(UsageError) -> BenchOptions {
        let verb = Verb.bench
        var parsed = parsed
        // `bench --json alloc`: the word after a bare --json was taken as its file, but it is the
        // scenario and there is no other; read it as `bench alloc --json`.
        if parsed.positionals.isEmpty, let file = parsed.value("json"), BenchRegistry.scenario(named: file) != nil {
            parsed.positionals = [file]
            parsed.values["json"] = [nil]
        }
        guard !parsed.positionals.isEmpty else {
            throw UsageError(
                "bench needs a scenario: \(BenchRegistry.listedNames.joined(separator: ", ").orIfEmpty("none is written yet"))", verb: verb)
        }
        let name = try onePositional(parsed, verb: verb)
        guard BenchRegistry.scenario(named: name) != nil else {
            throw UsageError(
                "unknown scenario '\(name)'; scenarios: \(BenchRegistry.listedNames.joined(separator: ", ").orIfEmpty("none is written yet"))",
                verb: verb)
        }
        var options = BenchOptions(scenario: name)
        if parsed.has("json") {
            let file = parsed.value("json")
            options.json = (file == nil || file == "-") ? .stdout : .file(file!)
            if case .file(let path) = options.json, path.isEmpty {
                throw UsageError("--json= needs a file name (or `--json` alone for stdout)", verb: verb)
            }
        }
        if let text = parsed.value("threads") {
            options.threads = try ArgumentParser.integer(text, option: "threads", in: 1...4096, verb: verb)
        }
        if let text = parsed.value("seconds") {
            options.seconds = try ArgumentParser.seconds(text, option: "seconds", verb: verb)
        }
        if let text = parsed.value("protocol") {
            guard let protocols = BenchProtocol.parse(text) else {
                throw UsageError("--protocol '\(text)' is not one of: swapcache, legacy, both, legacy-wq, legacy-bypass, all", verb: verb)
            }
            options.protocols = protocols
        }
        if let text = parsed.value("mode") {
            options.mode = try ArgumentParser.choice(text, option: "mode", verb: verb) as BenchMode
        }
        if let text = parsed.value("memory") {
            // The smallest budget any scenario takes (and `run`'s), so that 0 and 1 say the same.
            options.memoryBytes = try ArgumentParser.size(text, option: "memory", minimum: 64 << 10, verb: verb)
        }
        if let text = parsed.value("data") {
            options.dataBytes = try ArgumentParser.size(text, option: "data", verb: verb)
        }
        if let text = parsed.value("iterations") {
            options.iterations = try ArgumentParser.integer(text, option: "iterations", in: 1...1_000_000_000, verb: verb)
        }
        if let text = parsed.value("warmup") {
            options.warmup = try ArgumentParser.integer(text, option: "warmup", in: 0...1_000_000_000, verb: verb)
        }
        if let text = parsed.value("seed") {
            guard let seed = UInt64(text) else {
                throw UsageError("--seed '\(text)' is not a whole number from 0 to \(UInt64.max)", verb: verb)
            }
            options.seed = seed
        }
        if let text = parsed.value("dir") {
            guard !text.isEmpty else { throw UsageError("--dir needs a folder", verb: verb) }
            options.directory = text
        }
        if let text = parsed.value("tier") {
            guard WorkloadTier(rawValue: text) != nil else {
                throw UsageError(
                    "--tier '\(text)' is not one of: \(WorkloadTier.allCases.map(\.rawValue).joined(separator: ", "))", verb: verb)
            }
            options.tier = text
        }
        if let text = parsed.value("device") {
            guard WorkloadDevice(text) != nil else {
                throw UsageError(
                    "--device '\(RedisBackend.Configuration.redacted(text))' is not one of: file, memory, redis, redis://HOST:PORT, unix:///SOCKET, redis+cluster://HOST:PORT[,HOST:PORT…]",
                    verb: verb)
            }
            options.device = text
        }
        for case let pair? in parsed.values["param"] ?? [] {
            guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex else {
                throw UsageError("--param '\(pair)' must be KEY=VALUE", verb: verb)
            }
            options.parameters[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
        }
        try checkParameters(options, verb: verb)
        options.showsProgress = !parsed.has("no-progress")
        options.encryption = !parsed.has("no-encryption")
        return options
    }

    /// Every `--param` against what the scenario declares for its mode: an unknown key names
    /// the valid ones, a bad value names the values the key takes.
    private static func checkParameters(_ options: BenchOptions, verb: Verb) throws(UsageError) {
        guard let scenario = BenchRegistry.scenario(named: options.scenario) else { return }
        let declared = scenario.parameters(mode: options.mode)
        let mode = options.mode.map { " --mode \($0.rawValue)" } ?? ""
        for (key, value) in options.parameters.sorted(by: { $0.key < $1.key }) {
            guard let parameter = declared.first(where: { $0.key == key }) else {
                let valid =
                    declared.isEmpty
                    ? "it takes no --param"
                    : "its parameters: \(declared.map(\.key).joined(separator: ", "))"
                throw UsageError("--param \(key): bench \(options.scenario)\(mode) has no parameter '\(key)'; \(valid)", verb: verb)
            }
            guard parameter.accepts(value) else {
                throw UsageError("--param \(key)=\(RedisBackend.Configuration.redacted(value)): \(key) takes \(parameter.type)", verb: verb)
            }
        }
    }

    /// `exec [options] [--] CMD ARGS…`: the options end at `--` or at the first word that is not
    /// an option or its value; every word from there on is the command's, its options included.
    static func parseExec(_ words: ArraySlice<String>) throws(UsageError) -> ExecOptions {
        let verb = Verb.exec
        var end = words.startIndex
        while end < words.endIndex, words[end] != "--", words[end].hasPrefix("--") {
            let word = words[end]
            end += 1
            let name = word.dropFirst(2).prefix { $0 != "=" }
            if !word.contains("="), let spec = verb.options.first(where: { $0.name == name }), spec.value != .none { end += 1 }
        }
        let parsed = try ArgumentParser.split(words[words.startIndex..<min(end, words.endIndex)], for: verb)
        var command = Array(words[min(end, words.endIndex)...])
        if command.first == "--" { command.removeFirst() }
        guard let program = command.first, !program.isEmpty else {
            throw UsageError("missing CMD: the program to run, after --", verb: verb)
        }
        var options = ExecOptions(command: command)
        if let text = parsed.value("memory") {
            options.memoryBytes = try ArgumentParser.size(text, option: "memory", minimum: 4 << 20, verb: verb)
        }
        if let text = parsed.value("swap-size") {
            options.swapBytes = try ArgumentParser.size(text, option: "swap-size", minimum: 4 << 20, verb: verb)
        }
        if parsed.has("swap-dir") && parsed.has("device") {
            throw UsageError("--swap-dir and --device both say where to swap; give one", verb: verb)
        }
        if let directory = parsed.value("swap-dir") { options.swap = .temporaryFile(directory: directory) }
        if let device = parsed.value("device") {
            options.swap = device.hasPrefix("redis://") || device.hasPrefix("unix://") ? .redis(device) : .file(device)
        }
        for case let text? in parsed.values["group-limit"] ?? [] {
            try parseGroupLimit(text, into: &options)
        }
        try checkGroupLimits(options, swapSizeGiven: parsed.has("swap-size"))
        options.reportPath = parsed.value("report")
        options.quiet = parsed.has("quiet")
        options.noEncryption = parsed.has("no-encryption")
        return options
    }

    /// One `--group-limit` value: `KEY=SIZE[,KEY=SIZE]` with the keys `memory` and `swap` (or
    /// the cgroup files' names, `memory.max` and `memory.swap.max`), and `max` for no limit, as
    /// in those files. Later values win.
    private static func parseGroupLimit(_ text: String, into options: inout ExecOptions) throws(UsageError) {
        let verb = Verb.exec
        let example = "e.g. --group-limit swap=1G or --group-limit memory=64M,swap=1G"
        let items = text.split(separator: ",", omittingEmptySubsequences: false)
        for item in items {
            guard let equals = item.firstIndex(of: "="), equals != item.startIndex else {
                throw UsageError(
                    "--group-limit '\(text)' must be KEY=SIZE: memory=SIZE (the RAM the program's pages may hold) or swap=SIZE (the swap they may take); \(example)",
                    verb: verb)
            }
            let key = String(item[..<equals]).trimmingWhitespace()
            let value = String(item[item.index(after: equals)...]).trimmingWhitespace()
            switch key {
            case "memory", "memory.max":
                options.groupMemoryBytes =
                    value == "max" ? nil : try ArgumentParser.size(value, option: "group-limit memory", minimum: 1 << 20, verb: verb)
            case "swap", "memory.swap.max":
                options.groupSwapBytes =
                    value == "max" ? nil : try ArgumentParser.size(value, option: "group-limit swap", minimum: 0, verb: verb)
            default:
                throw UsageError("--group-limit: no limit '\(key)'; the limits are memory and swap; \(example)", verb: verb)
            }
        }
    }

    /// The group's limits against the budget and the swap: a limit that can never bind is a
    /// mistake, and the heap must hold at least one block of mimalloc's arena.
    private static func checkGroupLimits(_ options: ExecOptions, swapSizeGiven: Bool) throws(UsageError) {
        let verb = Verb.exec
        if let memory = options.groupMemoryBytes, memory > options.memoryBytes {
            throw UsageError(
                "--group-limit memory=\(ByteSize.format(memory)) is above --memory \(ByteSize.format(options.memoryBytes)): the budget holds the program's RAM already; give a memory limit of at most the budget",
                verb: verb)
        }
        if let swap = options.groupSwapBytes, swapSizeGiven, swap > options.effectiveSwapBytes {
            throw UsageError(
                "--group-limit swap=\(ByteSize.format(swap)) is above --swap-size \(ByteSize.format(options.effectiveSwapBytes)): the swap would be full first; give a larger --swap-size, or leave it out (it is then the swap limit)",
                verb: verb)
        }
        if options.hasGroupLimit, options.heapCapacityBytes < ExecOptions.heapBlockBytes {
            throw UsageError(
                "--group-limit leaves the program \(ByteSize.format(options.heapCapacityBytes)) of RAM and swap; the heap needs at least \(ByteSize.format(ExecOptions.heapBlockBytes)) (one block of its allocator's arena): give larger limits",
                verb: verb)
        }
    }

    /// The single positional argument `verb` needs (its name from `Verb.positionals`).
    private static func onePositional(_ parsed: ParsedArguments, verb: Verb) throws(UsageError) -> String {
        try expectPositionals(parsed, count: 1, verb: verb)
        guard !parsed.positionals[0].isEmpty else {
            throw UsageError("\(verb.positionals[0]) is empty; give a path", verb: verb)
        }
        return parsed.positionals[0]
    }

    private static func expectPositionals(_ parsed: ParsedArguments, count: Int, verb: Verb) throws(UsageError) {
        if parsed.positionals.count < count {
            throw UsageError("missing \(verb.positionals[parsed.positionals.count])", verb: verb)
        }
        if parsed.positionals.count > count {
            throw UsageError("unexpected argument '\(parsed.positionals[count])'", verb: verb)
        }
    }
}

extension String {
    func orIfEmpty(_ replacement: String) -> String { isEmpty ? replacement : self }
}
