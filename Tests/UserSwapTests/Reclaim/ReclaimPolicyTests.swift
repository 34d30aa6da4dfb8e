import Testing
import UserSwapCLI
@testable import UserSwap

/// The claim, as counts (not timings): on Zipf θ = 0.99 with a working set 4× the
/// budget, the kernel's two-list policy with refault activation swaps in less than plain second
/// chance. Single-threaded, no background reclaimer, fixed seed: the counts are deterministic.
@Suite("Reclaim policies")
struct ReclaimPolicyTests {
    static func swapIns(_ policy: ReclaimPolicy, frames: Int = 512, accesses: Int = 300_000) throws -> Int {
        let backend = TestBackend(pageCount: 1 + 8 * 512)
        let space = try SwapSpace(.init(memory: frames * SwapPage.size, devices: [.backend(backend)],
                                        reclaimPolicy: policy, backgroundReclaim: false))
        let pages = 4 * frames
        let region = try space.makeRegion(bytes: pages * SwapPage.size)
        for p in 0..<pages { try region.withPage(p) { fill($0, page: p) } }
        let zipf = ZipfSampler(count: pages, theta: 0.99, seed: 11)
        var random = Xoshiro256StarStar(seed: 12)
        let before = space.statistics[.swapIns]
        for _ in 0..<accesses {
            let p = zipf.page(using: &random)
            try region.withPage(p, for: .read) { _ in }
        }
        #expect(space.checkInvariants() == [])
        return space.statistics[.swapIns] - before
    }

    @Test("on Zipf at 4× the budget, the kernel's policy swaps in less than plain second chance")
    func workingsetBeatsSecondChance() throws {
        let counts = try ReclaimPolicy.allCases.map { ($0, try Self.swapIns($0)) }
        print("reclaim policies on zipf 0.99, 4× budget, 300k accesses: " + counts.map { "\($0.0.rawValue) \($0.1) swap-ins" }.joined(separator: ", "))
        let of = Dictionary(uniqueKeysWithValues: counts)
        #expect(of[.workingset]! < of[.secondChance]!)
        #expect(of[.workingset]! < of[.activeInactive]!, "refault activation itself saves swap-ins")
    }
}
