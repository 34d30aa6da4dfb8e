/// Byte counts as people type and read them: `4096`, `64K`, `256M`, `1.5G`, `2T`, with binary
/// multiples (K = 1024). `KiB`/`KB`/`k` spellings are accepted too; the result must be a whole
/// number of bytes.
public enum ByteSize {
    /// Parses `text` into bytes, or says what is wrong with it.
    public static func parse(_ text: String) -> Result<Int64, ByteSizeError> {
        let trimmed = text.trimmingWhitespace()
        guard !trimmed.isEmpty else { return .failure(.empty) }
        if trimmed.hasPrefix("-") { return .failure(.negative(text)) }

        // Split into number and unit: the number is digits with at most one '.'.
        var number = Substring(trimmed)
        var unit = Substring("")
        if let firstUnit = trimmed.firstIndex(where: { !($0.isASCII && ($0.isNumber || $0 == ".")) }) {
            number = trimmed[..<firstUnit]
            unit = trimmed[firstUnit...]
        }
        guard let shift = unitShift(unit.trimmingWhitespace().lowercased()) else {
            return .failure(.badUnit(text))
        }
        // Accepted numbers: "12", "1.5", ".5"; not "", ".", "5." or "1.2.3".
        let parts = number.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count <= 2,
            parts.allSatisfy({ $0.allSatisfy { $0.isASCII && $0.isNumber } }),
            parts.count == 1 ? !parts[0].isEmpty : !parts[1].isEmpty
        else { return .failure(.notANumber(text)) }
        guard let whole = parts[0].isEmpty ? 0 : Int64(parts[0]) else { return .failure(.tooLarge(text)) }

        let multiplier = Int64(1) << shift
        let (wholeBytes, overflow) = whole.multipliedReportingOverflow(by: multiplier)
        guard !overflow else { return .failure(.tooLarge(text)) }
        guard parts.count == 2 else { return .success(wholeBytes) }

        // The fraction, exactly: digits / 10^n × 2^shift must be a whole number. Trailing zeros
        // say nothing ("1.50G"); up to 18 digits keep 10^n in an Int64, and a fraction whose
        // product with 2^shift overflows cannot come out whole anyway.
        let digits = parts[1].reversed().drop(while: { $0 == "0" }).reversed()
        guard !digits.isEmpty else { return .success(wholeBytes) }
        guard digits.count <= 18, let fraction = Int64(String(digits)) else { return .failure(.notWholeBytes(text)) }
        var denominator: Int64 = 1
        for _ in 0..<digits.count { denominator *= 10 }
        let (scaled, scaledOverflow) = fraction.multipliedReportingOverflow(by: multiplier)
        guard !scaledOverflow else { return .failure(.notWholeBytes(text)) }
        guard scaled % denominator == 0 else { return .failure(.notWholeBytes(text)) }
        let (total, sumOverflow) = wholeBytes.addingReportingOverflow(scaled / denominator)
        guard !sumOverflow else { return .failure(.tooLarge(text)) }
        return .success(total)
    }

    /// `bytes` with the largest binary unit that keeps it readable: `64 MiB`, `1.5 GiB`, `512 B`.
    public static func format(_ bytes: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var value = Double(bytes)
        var index = 0
        while abs(value) >= 1024, index < units.count - 1 {
            value /= 1024
            index += 1
        }
        if index == 0 { return "\(bytes) B" }
        let rounded = (value * 10).rounded() / 10
        let text = rounded == rounded.rounded() ? String(Int64(rounded)) : String(rounded)
        return "\(text) \(units[index])"
    }

    /// log2 of the multiplier for a lower-cased unit, or nil if it is not a unit.
    private static func unitShift(_ unit: String) -> Int? {
        switch unit {
        case "", "b": 0
        case "k", "kb", "kib": 10
        case "m", "mb", "mib": 20
        case "g", "gb", "gib": 30
        case "t", "tb", "tib": 40
        default: nil
        }
    }
}

/// Why a size did not parse; the description is the user-facing message.
public enum ByteSizeError: Error, Equatable, Sendable, CustomStringConvertible {
    case empty
    case negative(String)
    case notANumber(String)
    case badUnit(String)
    case tooLarge(String)
    case notWholeBytes(String)

    public var description: String {
        switch self {
        case .empty: "a size is empty; write e.g. 64M or 1.5G"
        case .negative(let t): "size '\(t)' is negative"
        case .notANumber(let t): "'\(t)' is not a size; write e.g. 4096, 64K, 256M, 1.5G or 2T"
        case .badUnit(let t): "'\(t)' has an unknown unit; use K, M, G or T (binary: 1K = 1024 bytes)"
        case .tooLarge(let t): "size '\(t)' is too large"
        case .notWholeBytes(let t): "size '\(t)' is not a whole number of bytes"
        }
    }
}

extension StringProtocol {
    package func trimmingWhitespace() -> String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}
