import Testing

@testable import UserSwapBench
@testable import UserSwapCLI

/// The workload suites live under one `Workloads` namespace: `swift test --filter Workloads`.
@Suite("Workloads")
enum Workloads {}

extension Workloads {
    /// A console that drops everything: workload tests read outcomes, not text.
    static let quiet = Console(errorIsTerminal: false, writeOutput: { _ in }, writeError: { _ in })
}
