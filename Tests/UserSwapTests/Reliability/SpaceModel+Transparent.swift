import Glibc
import Testing

@testable import UserSwap

/// A step on a run's transparent region: plain loads and stores of its memory (whole pages, or
/// part of one; every load compares the whole page), short pins of the same pages, and the
/// region's swap-out, discard, prefetch, deactivation and readahead advice. Parameters are raw
/// numbers interpreted when the step runs, as for `ModelOp`: a page is taken modulo the pages
/// the run owns (the ranges of swap-out, prefetch and deactivation modulo the region's pages,
/// which may be other runs' too).
enum TransparentOp: Equatable, Sendable, CustomStringConvertible {
    /// Copies the page out of the memory (`memcpy` from `base + page * 4096`) and compares all
    /// of it with the model.
    case load(page: Int)
    /// Copies a new generation's bytes into the memory: `length` bytes from `offset` of the page
    /// (both taken modulo what fits; offset 0 and length 4096 is the whole page).
    case store(page: Int, offset: Int, length: Int)
    /// A short pin of the page, as the explicit API gives it: for reading, its bytes are
    /// compared; for writing, a new generation goes in through the pin.
    case pin(page: Int, write: Bool)
    case swapOut(page: Int, count: Int)
    /// Discards pages the run owns: they read as zeros again.
    case discard(page: Int, count: Int)
    case prefetch(page: Int, count: Int)
    /// Unmaps the pages from the application's view, keeping their data: the next touch of
    /// each is a minor fault.
    case deactivate(page: Int, count: Int)
    /// `advise` of a readahead policy: 0 normal, 1 sequential, 2 random.
    case advise(advice: Int)
    /// Loads and compares every page the run owns.
    case verify
    /// Releases the run's own region and makes a new one of `pages` pages (a run on a region
    /// other runs share does nothing).
    case remake(pages: Int)

    /// A random step from the bits of `r` (and more draws); plain loads and stores weigh most.
    static func random(_ r: UInt64, _ rng: inout SeededRandom) -> TransparentOp {
        let x = rng.next()
        let page = Int((x >> 10) & 0xffff), c = Int((x >> 26) & 0xffff), d = Int((x >> 42) & 0xffff)
        switch r % 1000 {
        case 0..<330: return .load(page: page)
        case 330..<500: return .store(page: page, offset: 0, length: SwapPage.size)
        case 500..<640: return .store(page: page, offset: c, length: 1 + d)
        case 640..<690: return .pin(page: page, write: c & 1 == 0)
        case 690..<800: return .swapOut(page: page, count: 1 + c % 16)
        case 800..<850: return .discard(page: page, count: 1 + c % 8)
        case 850..<890: return .prefetch(page: page, count: 1 + c % 16)
        case 890..<940: return .deactivate(page: page, count: 1 + c % 16)
        case 940..<955: return .advise(advice: c % 3)
        case 955..<995: return .verify
        default: return .remake(pages: 1 + c % ModelOp.maxRegionPages)
        }
    }

    var description: String {
        switch self {
        case .load(let p): ".load(page: \(p))"
        case .store(let p, let o, let n): ".store(page: \(p), offset: \(o), length: \(n))"
        case .pin(let p, let w): ".pin(page: \(p), write: \(w))"
        case .swapOut(let p, let n): ".swapOut(page: \(p), count: \(n))"
        case .discard(let p, let n): ".discard(page: \(p), count: \(n))"
        case .prefetch(let p, let n): ".prefetch(page: \(p), count: \(n))"
        case .deactivate(let p, let n): ".deactivate(page: \(p), count: \(n))"
        case .advise(let a): ".advise(advice: \(a))"
        case .verify: ".verify"
        case .remake(let n): ".remake(pages: \(n))"
        }
    }
}

/// The transparent region a run drives.
enum TransparentSetup {
    /// A region of the run's own (made with the run, remade by `.remake`), served so.
    case own(TransparentRegion.FaultService)
    /// The pages `index`, `index + runs`, … of a region that `runs` runs share: each run owns
    /// its pages, so every load has one right answer, while swap-out, prefetch and
    /// deactivation reach any page and reclaim takes anyone's.
    case shared(TransparentRegion, index: Int, runs: Int)
}

/// What a run's pages of a transparent region hold: the bytes themselves (a store may cover part
/// of a page), and whether each page was touched since it was made or discarded.
final class TransparentModel {
    let region: TransparentRegion
    /// Tells this region's stores from every other's (as `RegionModel.serial`).
    let serial: Int
    let group: Int
    /// The region's pages this run owns, ascending.
    let pages: [Int]
    /// The run made the region and may release it.
    let own: Bool
    /// Loaded, stored or pinned since made or discarded: the page is not `.untouched`.
    var touched: [Bool]
    /// The expected bytes of each owned page, one after another.
    private let bytes: UnsafeMutableRawBufferPointer

    init(region: TransparentRegion, serial: Int, group: Int, pages: [Int], own: Bool) {
        self.region = region
        self.serial = serial
        self.group = group
        self.pages = pages
        self.own = own
        touched = Array(repeating: false, count: pages.count)
        bytes = .allocate(byteCount: pages.count * SwapPage.size, alignment: 16)
        memset(bytes.baseAddress!, 0, bytes.count)
    }

    deinit { bytes.deallocate() }

    /// The expected bytes of owned page `i`.
    func expected(_ i: Int) -> UnsafeMutableRawPointer { bytes.baseAddress! + i * SwapPage.size }

    /// Owned page `i` in the application's view.
    func memory(_ i: Int) -> UnsafeMutableRawPointer { region.base + pages[i] * SwapPage.size }

    /// The region as an explicit region's model, for `SpaceModelRun.access`: its serial and
    /// group name it in errors and say which limits apply.
    var asRegionModel: SpaceModelRun.RegionModel {
        .init(region: region.region, serial: serial, group: group, generation: [], mapped: [])
    }
}

extension SpaceModelRun {
    /// Makes the run's own transparent region of `pages` pages, in one of the run's groups
    /// (chosen by its size, so that remakes move it among them): the model then checks the
    /// groups' limits on plain touches as on explicit accesses.
    func makeTransparent(pages: Int) throws -> TransparentModel {
        let g = pages % groups.count
        let region = try space.makeTransparentRegion(
            bytes: pages * SwapPage.size, group: g == 0 ? nil : groups[g], faults: transparentService!)
        defer { nextSerial += 1 }
        return TransparentModel(region: region, serial: nextSerial, group: g, pages: Array(0..<pages), own: true)
    }

    /// Runs a transparent step on the space and the model, then checks that every page the run
    /// owns is untouched exactly when the model says so.
    ///
    /// A plain load or store cannot report an error: a fault that cannot be resolved is SIGBUS
    /// and ends the process. So the transparent region goes only in cases without a
    /// fault-injecting device, whose swap holds everything the runs can write (a model that
    /// finds swap full outside a swap limit fails), and a touch is made only where the model
    /// would call an out-of-memory error an engine bug (`outOfMemoryJustified` false for one
    /// page: no pins fill a limit or the budget, no swap limit of the run is reached; and
    /// `swapLimitsStopReclaim` false: no group over a lowered limit by more pages than its swap
    /// limits take, which an explicit access finds only after its error). Alone
    /// in the space that is exact; with other runs, whose state no run sees, the case sets no
    /// swap limits (`ModelSetup.swapLimits`), so only pins (at most 4 pages per run) hold memory
    /// and a fault always finds a frame once the pages in flight settle (it retries for a
    /// second). A touch the check holds back is counted (`transparentSkipped`), not made.
    func apply(_ op: TransparentOp, step: Int) throws(ModelFailure) {
        guard let t = transparent else { return }
        let n = t.pages.count
        switch op {
        case .load(let p):
            try load(step, t, p % n)
        case .store(let p, let offset, let length):
            let i = p % n
            guard mayTouch(t) else { return }
            let start = offset % SwapPage.size
            let count = 1 + (max(1, length) - 1) % (SwapPage.size - start)
            let g = nextGeneration
            nextGeneration += 1
            Self.fill(expected, Self.tag(serial: t.serial, page: t.pages[i], generation: g))
            memcpy(t.memory(i) + start, expected.baseAddress! + start, count)
            memcpy(t.expected(i) + start, expected.baseAddress! + start, count)
            transparentTouches += 1
            t.touched[i] = true
            try expectResident(step, t, i)
        case .pin(let p, let write):
            let i = p % n
            var seen: ModelFailure?
            let g = nextGeneration
            let done = try access(step, t.asRegionModel, t.pages[i]) {
                let pin = try t.region.pin(t.pages[i], for: write ? .write : .read)
                let bytes = pin.bytes
                if write {
                    Self.fill(bytes, Self.tag(serial: t.serial, page: t.pages[i], generation: g))
                    memcpy(t.expected(i), bytes.baseAddress!, SwapPage.size)
                } else {
                    do throws(ModelFailure) { try compare(step, bytes.baseAddress!, t, i, what: "a pin") } catch { seen = error }
                }
                withExtendedLifetime(pin) {}
            }
            if let seen { throw seen }
            if done {
                if write { nextGeneration += 1 }
                t.touched[i] = true
                try expectResident(step, t, i)
            }
        case .swapOut(let p, let count):
            let range = window(p, count, in: t.region.pageCount)
            // No pin outlives a transparent step: alone in the space, every resident page of
            // the range must go.
            let resident = range.filter { t.region.state(ofPage: $0) == .resident }
            var freed = 0
            _ = try access(step, t.asRegionModel, range.lowerBound, swapOut: true) { freed = try t.region.swapOut(pages: range) }
            if strict && faults == nil {
                if freed != resident.count && !(freed < resident.count && swapFullJustified(t.group)) {
                    throw ModelFailure(
                        kind: .impossibleState, step: step,
                        message: "swapOut(\(range)) of the transparent region freed \(freed) of its \(resident.count) resident pages")
                }
                for page in resident where freed == resident.count && t.region.state(ofPage: page) != .swapped {
                    throw ModelFailure(
                        kind: .impossibleState, step: step,
                        message: "page \(page) of the transparent region is \(t.region.state(ofPage: page)) right after its swap-out")
                }
            }
        case .discard(let p, let count):
            let owned = (p % n)..<min(n, p % n + count)
            // The owned pages in runs of consecutive region pages (a shared region's are apart).
            var i = owned.lowerBound
            while i < owned.upperBound {
                var j = i + 1
                while j < owned.upperBound && t.pages[j] == t.pages[j - 1] + 1 { j += 1 }
                do { try t.region.discard(pages: t.pages[i]..<(t.pages[j - 1] + 1)) } catch {
                    throw ModelFailure(kind: .unexpectedError, step: step, message: "discard of the transparent region: \(error)")
                }
                for k in i..<j {
                    if !forgetDiscards { memset(t.expected(k), 0, SwapPage.size) }
                    t.touched[k] = false
                }
                i = j
            }
        case .prefetch(let p, let count):
            let range = window(p, count, in: t.region.pageCount)
            _ = try access(step, t.asRegionModel, range.lowerBound) { _ = try t.region.prefetch(pages: range) }
        case .deactivate(let p, let count):
            let range = window(p, count, in: t.region.pageCount)
            do { try t.region.deactivate(pages: range) } catch {
                throw ModelFailure(kind: .unexpectedError, step: step, message: "deactivate(\(range)) of the transparent region: \(error)")
            }
        case .advise(let a):
            let advice: Region.Advice = [.normal, .sequential, .random][a % 3]
            _ = try access(step, t.asRegionModel, 0) { try t.region.advise(advice) }
        case .verify:
            for i in 0..<n { try load(step, t, i) }
        case .remake(let pages):
            guard t.own else { return }
            transparent = nil
            do {
                transparent = try makeTransparent(pages: pages)
            } catch {
                throw ModelFailure(kind: .unexpectedError, step: step, message: "makeTransparentRegion: \(error)")
            }
        }
        if let t = transparent {
            // Readahead that a fault on its own thread handed off runs after the fault: alone
            // in the space, the next step must find it done, as it finds every other read.
            if strict && t.region.faultService == .faultingThread { t.region.resolver.waitForReadahead() }
            try checkTransparentStates(step, t)
        }
    }

    /// Copies owned page `i` out of the memory and compares it with the model.
    private func load(_ step: Int, _ t: TransparentModel, _ i: Int) throws(ModelFailure) {
        guard mayTouch(t) else { return }
        memcpy(expected.baseAddress!, t.memory(i), SwapPage.size)
        transparentTouches += 1
        t.touched[i] = true
        try compare(step, expected.baseAddress!, t, i, what: "a transparent load")
        try expectResident(step, t, i)
    }

    /// Whether a plain touch may be made now (see `apply(_:step:)`); counts those held back.
    private func mayTouch(_ t: TransparentModel) -> Bool {
        if outOfMemoryJustified(t.group, needed: 1) || swapLimitsStopReclaim(t.group, needed: 1) {
            transparentSkipped += 1
            return false
        }
        return true
    }

    private func compare(
        _ step: Int, _ bytes: UnsafeRawPointer, _ t: TransparentModel, _ i: Int, what: String
    ) throws(ModelFailure) {
        verifiedPages += 1
        guard memcmp(bytes, t.expected(i), SwapPage.size) != 0 else { return }
        var at = 0
        while at < SwapPage.size && bytes.load(fromByteOffset: at, as: UInt8.self) == t.expected(i).load(fromByteOffset: at, as: UInt8.self)
        {
            at += 1
        }
        let word = at / 8 * 8
        throw ModelFailure(
            kind: .wrongBytes, step: step,
            message:
                "\(what) of page \(t.pages[i]) of the transparent region (\(t.region.pageCount) pages, serial \(t.serial)) differs from byte \(at): word \(String(bytes.load(fromByteOffset: word, as: UInt64.self), radix: 16)), expected \(String(t.expected(i).load(fromByteOffset: word, as: UInt64.self), radix: 16))"
        )
    }

    private func expectResident(_ step: Int, _ t: TransparentModel, _ i: Int) throws(ModelFailure) {
        guard strict else { return }
        let state = t.region.state(ofPage: t.pages[i])
        if state != .resident {
            throw ModelFailure(
                kind: .impossibleState, step: step, message: "page \(t.pages[i]) of the transparent region is \(state) right after a touch")
        }
    }

    /// Every owned page is untouched exactly when the model says so (others only swap out,
    /// prefetch or deactivate it, which never makes it untouched or touched).
    private func checkTransparentStates(_ step: Int, _ t: TransparentModel) throws(ModelFailure) {
        for i in t.pages.indices where (t.region.state(ofPage: t.pages[i]) == .untouched) == t.touched[i] {
            throw ModelFailure(
                kind: .impossibleState, step: step,
                message:
                    "page \(t.pages[i]) of the transparent region is \(t.region.state(ofPage: t.pages[i])); the model has it \(t.touched[i] ? "touched" : "untouched")"
            )
        }
    }

    /// `count` pages from `page` (modulo `pages`), cut at the end.
    private func window(_ page: Int, _ count: Int, in pages: Int) -> Range<Int> {
        (page % pages)..<min(pages, page % pages + count)
    }
}
