import UserSwapBench

/// What a command line asks for, fully validated: the result of `CommandLineTool.parse`.
public enum Invocation: Equatable, Sendable {
    /// `userswap help`, `userswap help VERB`, or `-h`/`--help` anywhere. `nil`: general help.
    case help(Verb?)
    case format(FormatOptions)
    case inspect(InspectOptions)
    case run(RunOptions)
    case exec(ExecOptions)
    case bench(BenchOptions)
    case redisClean(RedisCleanOptions)
    /// `userswap bench --list`.
    case listScenarios

    /// Whether the verb makes files that a signal must not leave behind (see
    /// `TerminationSignals`): `run`, `bench` and `format`.
    public var makesFiles: Bool {
        switch self {
        case .format, .run, .bench: true
        case .help, .inspect, .listScenarios, .redisClean, .exec: false
        }
    }
}

/// `userswap format FILE --size SIZE [--label LABEL] [--force] [--write-out]`.
public struct FormatOptions: Equatable, Sendable {
    public var path: String
    public var bytes: Int64
    public var label: String
    public var force: Bool
    /// Write every block once (`SwapFile.format(writeOut:)`).
    public var writeOut: Bool

    public init(path: String, bytes: Int64, label: String = "", force: Bool = false, writeOut: Bool = false) {
        self.path = path
        self.bytes = bytes
        self.label = label
        self.force = force
        self.writeOut = writeOut
    }
}

/// `userswap inspect FILE [--json]`.
public struct InspectOptions: Equatable, Sendable {
    public var path: String
    public var json: Bool

    public init(path: String, json: Bool = false) {
        self.path = path
        self.json = json
    }
}

/// `userswap redis-clean URL --namespace NAMESPACE`.
public struct RedisCleanOptions: Equatable, Sendable {
    /// `redis://HOST:PORT` or `unix:///SOCKET`, with or without a password.
    public var url: String
    public var namespace: String

    public init(url: String, namespace: String) {
        self.url = url
        self.namespace = namespace
    }
}
