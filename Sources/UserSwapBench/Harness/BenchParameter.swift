import UserSwap

/// One `--param KEY=VALUE` a scenario understands: its key, the values it takes, its default
/// and what it sets. Scenarios declare theirs (`BenchScenario.parameters(mode:)`); the parser
/// checks every `--param` against them before anything runs, so an unknown key or a value of
/// the wrong kind is a usage error (exit 64) that names the valid keys or values, and
/// `userswap help bench` lists them.
public struct BenchParameter: Sendable {
    /// What users type before the `=`: lower case, words joined by `_`.
    public let key: String
    /// The values it takes, in words for help and errors: "integer 1…4096", "lz4|zstd|zstd-N".
    public let type: String
    /// The value used when the user gives none, as the user would type it; nil when the
    /// scenario derives it from other options (then `summary` says how).
    public let defaultValue: String?
    /// One line for help: what it sets.
    public let summary: String
    /// Whether `text` is a value of `type`.
    private let accepts: @Sendable (String) -> Bool

    public init(
        _ key: String, type: String, default defaultValue: String?, _ summary: String,
        accepts: @escaping @Sendable (String) -> Bool
    ) {
        self.key = key
        self.type = type
        self.defaultValue = defaultValue
        self.summary = summary
        self.accepts = accepts
    }

    /// Whole numbers in `range`.
    public static func integer(_ key: String, _ range: ClosedRange<Int>, default value: Int?, _ summary: String) -> BenchParameter {
        let upper = range.upperBound == Int.max ? "" : "\(range.upperBound)"
        return BenchParameter(key, type: "integer \(range.lowerBound)…\(upper)", default: value.map(String.init), summary) {
            Int($0).map(range.contains) ?? false
        }
    }

    /// Decimal numbers in `range`.
    public static func number(_ key: String, _ range: ClosedRange<Double>, default value: Double?, _ summary: String) -> BenchParameter {
        BenchParameter(
            key, type: "number \(LatencySummary.trimmed(range.lowerBound))…\(LatencySummary.trimmed(range.upperBound))",
            default: value.map { LatencySummary.trimmed($0) }, summary
        ) {
            Double($0).map(range.contains) ?? false
        }
    }

    /// Sizes with K/M/G suffixes (`64K`), from `range.lowerBound` to `range.upperBound` bytes.
    public static func size(_ key: String, _ range: ClosedRange<Int64>, default value: String?, _ summary: String) -> BenchParameter {
        BenchParameter(key, type: "size \(ByteSize.format(range.lowerBound))…\(ByteSize.format(range.upperBound))", default: value, summary)
        {
            guard case .success(let bytes) = ByteSize.parse($0) else { return false }
            return range.contains(bytes)
        }
    }

    /// One of `words`.
    public static func choice(_ key: String, _ words: [String], default value: String?, _ summary: String) -> BenchParameter {
        BenchParameter(key, type: words.joined(separator: "|"), default: value, summary) { words.contains($0) }
    }

    /// One or more of `words`, separated by commas.
    public static func list(_ key: String, of words: [String], default value: String?, _ summary: String) -> BenchParameter {
        BenchParameter(key, type: "comma-separated: " + words.joined(separator: ","), default: value, summary) { text in
            let items = text.split(separator: ",", omittingEmptySubsequences: false)
            return !items.isEmpty && items.allSatisfy { words.contains(String($0)) }
        }
    }

    /// Whether `text` is a value this parameter takes.
    public func accepts(_ text: String) -> Bool { accepts(text) }

    /// "key=TYPE (default D): summary", for help.
    public var synopsis: String {
        "\(key)=\(type)" + (defaultValue.map { " (default \($0))" } ?? "")
    }
}

extension BenchOptions {
    /// The value of `parameter`: what the user gave, else its declared default, as `T`. The
    /// parser has checked the user's value; a failure here is a declaration that does not fit
    /// its reader (a default that is not a `T`, or no default to fall back on).
    public func value<T: LosslessStringConvertible>(_ parameter: BenchParameter) throws(BenchError) -> T {
        guard let text = parameters[parameter.key] ?? parameter.defaultValue else {
            trap("--param \(parameter.key) has no default; read it with `parameters[key]`")
        }
        guard let parsed = T(text) else {
            throw BenchError("--param \(parameter.key)=\(text): '\(text)' is not a valid \(T.self) (\(parameter.type))")
        }
        return parsed
    }
}
