import CUserSwapAPI
import Glibc

/// A space's settings from environment variables (`userswap_space_from_env`): parsed as a pure
/// function of the variables, so that tests can give any set.
struct EnvironmentSettings: Equatable {
    /// `USERSWAP_MEMORY`: the RAM budget.
    var memory = 256 << 20
    /// `USERSWAP_SWAP_DIR`: where the unnamed swap file goes (nil: $TMPDIR, else /tmp).
    var swapDirectory: String?
    /// `USERSWAP_SWAP_SIZE`: the size of the swap device (4 × memory by default).
    var swapSize = 1 << 30
    /// `USERSWAP_SWAP_FILE`: a named swap file, instead of the unnamed one.
    var swapFile: String?
    /// `USERSWAP_REDIS_URL`: a Redis server, instead of the unnamed file.
    var redisURL: String?
    /// `USERSWAP_SPACE_*` flags (`USERSWAP_ENCRYPTION=none` sets `NO_ENCRYPTION`).
    var flags: UInt32 = 0

    /// The unnamed swap file's size: none when a named file or a Redis server is given.
    var temporarySwapSize: Int { swapFile == nil && redisURL == nil ? swapSize : 0 }

    /// The variables this reads.
    static let names = [
        "USERSWAP_MEMORY", "USERSWAP_SWAP_DIR", "USERSWAP_SWAP_SIZE", "USERSWAP_SWAP_FILE",
        "USERSWAP_REDIS_URL", "USERSWAP_ENCRYPTION",
    ]

    /// The process's values of `names`, those set (empty values count as unset).
    static func current() -> [String: String] {
        var values: [String: String] = [:]
        for name in names {
            if let value = getenv(name), value.pointee != 0 { values[name] = String(cString: value) }
        }
        return values
    }

    /// What the variables say, or which one is wrong and why.
    static func parse(_ environment: [String: String]) -> Result<EnvironmentSettings, EnvironmentError> {
        var settings = EnvironmentSettings()
        if let text = environment["USERSWAP_MEMORY"] {
            guard let bytes = parseSize(text), bytes >= 4096 else {
                return .failure(
                    EnvironmentError("USERSWAP_MEMORY=\(text) is not a size of at least 4K; write it as 256M, 1.5G or a number of bytes"))
            }
            settings.memory = bytes
        }
        settings.swapSize = settings.memory.multipliedReportingOverflow(by: 4).overflow ? Int.max : settings.memory * 4
        if let text = environment["USERSWAP_SWAP_SIZE"] {
            guard let bytes = parseSize(text) else {
                return .failure(
                    EnvironmentError(
                        "USERSWAP_SWAP_SIZE=\(text) is not a size; write it as 1G, 512M, a number of bytes, or 0 for no swap file"))
            }
            settings.swapSize = bytes
        }
        settings.swapDirectory = environment["USERSWAP_SWAP_DIR"]
        settings.swapFile = environment["USERSWAP_SWAP_FILE"]
        settings.redisURL = environment["USERSWAP_REDIS_URL"]
        switch environment["USERSWAP_ENCRYPTION"] {
        case nil, "1", "on", "yes", "random", "randomKey": break
        case "0", "off", "no", "none": settings.flags |= UInt32(USERSWAP_SPACE_NO_ENCRYPTION)
        case let other?:
            return .failure(
                EnvironmentError("USERSWAP_ENCRYPTION=\(other) is not one of: none (pages in clear), random (sealed, the default)"))
        }
        return .success(settings)
    }

    /// A byte count as people write it: `4096`, `64K`, `256M`, `1.5G`, `2T` (binary multiples;
    /// `KiB`, `KB` and lower case too). Nil when it is not one, or not a whole number of bytes.
    static func parseSize(_ text: String) -> Int? {
        let trimmed = text.filter { $0 != " " }
        let digits = trimmed.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
        let unit = trimmed.dropFirst(digits.count).lowercased()
        let shifts: [String: Int] = [
            "": 0, "b": 0, "k": 10, "kb": 10, "kib": 10, "m": 20, "mb": 20, "mib": 20,
            "g": 30, "gb": 30, "gib": 30, "t": 40, "tb": 40, "tib": 40,
        ]
        guard let shift = shifts[unit], !digits.isEmpty, digits.filter({ $0 == "." }).count <= 1,
            digits != "."
        else { return nil }
        let parts = digits.split(separator: ".", omittingEmptySubsequences: false)
        guard let whole = Int(parts[0].isEmpty ? "0" : String(parts[0])),
            whole <= Int.max >> shift
        else { return nil }
        var bytes = whole << shift
        if parts.count == 2, !parts[1].isEmpty {
            // The fraction exactly: digits × 2^shift / 10^n must be whole.
            let fraction = parts[1].prefix(12)
            guard fraction.count == parts[1].count, let numerator = Int(fraction) else { return nil }
            var denominator = 1
            for _ in 0..<fraction.count { denominator *= 10 }
            let scaled = numerator.multipliedReportingOverflow(by: 1 << shift)
            guard !scaled.overflow, scaled.partialValue % denominator == 0 else { return nil }
            bytes += scaled.partialValue / denominator
        }
        return bytes
    }
}

/// A variable `EnvironmentSettings.parse` cannot read: its message names it and says how to
/// write it.
struct EnvironmentError: Error, Equatable {
    let message: String
    init(_ message: String) { self.message = message }
}
