import Foundation
import Glibc
import Synchronization
import Testing

@testable import UserSwap

/// A process with transparent regions that crashes must die, not hang: whatever handles the
/// crash (Swift's backtracer, on by default, which pauses every thread and reads the process's
/// memory) must not sleep in a fault on a region whose handler threads it paused
/// (`TransparentCrashGuard`).
///
/// Each case runs a child — this test binary, running `crashingChild` — under the default
/// backtracer settings, and waits for it with a deadline.
@Suite("Transparent regions: a crash does not hang")
struct TransparentCrashTests {
    /// How the child crashes.
    enum Crash: String, CaseIterable, Sendable {
        /// A store through a bad pointer (SIGSEGV).
        case badPointer
        /// `abort()` (SIGABRT).
        case abort
        /// A fault the engine cannot resolve (the device fails every read): the handler thread
        /// sends the faulting thread SIGBUS.
        case unresolvedFault

        var signal: Int32 {
            switch self {
            case .badPointer: SIGSEGV
            case .abort: SIGABRT
            case .unresolvedFault: SIGBUS
            }
        }
    }

    static let modeVariable = "USERSWAP_CRASH_TEST_MODE"

    @Test(
        "a crashing process with transparent regions, some pages swapped out, dies of its signal within seconds",
        arguments: Crash.allCases)
    func crashDoesNotHang(_ crash: Crash) throws {
        var environment = ProcessInfo.processInfo.environment
        // The default backtracer: the reader that used to hang.
        environment.removeValue(forKey: "SWIFT_BACKTRACE")
        environment[Self.modeVariable] = crash.rawValue
        let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let start = ContinuousClock.now
        let (status, output) = try TestProcess.run(
            executable, ["--testing-library", "swift-testing", "--filter", "TransparentCrashTests/crashingChild"],
            environment: environment, timeout: .seconds(90))
        let took = ContinuousClock.now - start
        print("crash test \(crash): status \(status) after \(took)")
        #expect(status != -1, "the child hung for 90 s after its crash (\(crash)): \(output.suffix(2000))")
        #expect(status == 128 + crash.signal, "the child (\(crash)) ended with status \(status): \(output.suffix(2000))")
        #expect(output.contains("child ready to crash"), "the child did not reach its crash: \(output.suffix(2000))")
    }

    /// The child: a transparent region served by handler threads, its pages written and most
    /// swapped out (so that whoever reads them after the crash meets pages nobody maps), then
    /// the crash. Runs only in a child that `crashDoesNotHang` started.
    @Test(.enabled(if: ProcessInfo.processInfo.environment[modeVariable] != nil))
    func crashingChild() throws {
        let crash = try #require(Crash(rawValue: ProcessInfo.processInfo.environment[Self.modeVariable] ?? ""))
        let (space, backend) = try makeSpace(memoryPages: 32)
        let pages = 64
        let region = try space.makeTransparentRegion(bytes: pages * SwapPage.size, faults: .handlerThreads(2))
        let words = region.base.assumingMemoryBound(to: UInt64.self)
        for p in 0..<pages { words[p * 512] = UInt64(p) + 1 }
        try region.swapOut(pages: 0..<pages)
        #expect(region.state(ofPage: 0) == .swapped)
        let output = "child ready to crash\n"
        _ = output.withCString { write(1, $0, strlen($0)) }
        switch crash {
        case .badPointer:
            UnsafeMutablePointer<UInt64>(bitPattern: 64)!.pointee = words[0]
        case .abort:
            Glibc.abort()
        case .unresolvedFault:
            backend.failReads.store(1_000_000, ordering: .relaxed)
            words[8 * 512] = 1
        }
        Issue.record("the child did not crash (\(crash))")
        withExtendedLifetime(space) {}
    }
}
