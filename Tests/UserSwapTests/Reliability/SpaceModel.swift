import Glibc
import Synchronization
import Testing
import UserSwapCompression
import UserSwapTestSupport

@testable import UserSwap

/// One step of a model run. Parameters are raw numbers interpreted when the step runs (a slot
/// modulo the slots, a page modulo the region's size; a step on an empty slot does nothing), so
/// that any subsequence of a run is itself a valid run: what shrinking needs.
enum ModelOp: Equatable, Sendable, CustomStringConvertible {
    /// Makes a region of `pages` pages in `group` in `slot`, dropping the one there.
    case create(slot: Int, pages: Int, group: Int)
    case destroy(slot: Int)
    /// A new generation of the page's bytes, written under a short write pin.
    case write(slot: Int, page: Int)
    /// Reads the page under a short read pin and checks its bytes.
    case read(slot: Int, page: Int)
    /// Takes a pin and keeps it across later steps.
    case pin(slot: Int, page: Int, write: Bool)
    /// Writes a new generation through a held write pin (a stale one too: it must not show).
    case writePinned(index: Int)
    case unpin(index: Int)
    case swapOut(slot: Int, page: Int, count: Int)
    case discard(slot: Int, page: Int, count: Int)
    /// `group.memoryLimit = pages` (nil: no limit).
    case memoryLimit(group: Int, pages: Int?)
    case swapLimit(group: Int, pages: Int?)
    /// Reads and checks every page of the region.
    case verify(slot: Int)
    /// Reads and checks a page of the region every run of a space shares (written once at the
    /// start): concurrent runs fault the same entries in at once.
    case readShared(page: Int)
    case swapOutShared(page: Int, count: Int)
    /// `region.prefetch(pages:)`: reads ahead into the swap cache without mapping.
    case prefetch(slot: Int, page: Int, count: Int)
    /// `region.advise` of a readahead policy: 0 normal, 1 sequential, 2 random.
    case advise(slot: Int, advice: Int)
    /// Swaps on a second, lower-priority device, or swaps it off (its pages come back to
    /// memory or go to the first device) when it is on.
    case toggleDevice
    /// A step on the run's transparent region, if it has one (`SpaceModel+Transparent.swift`).
    case transparent(TransparentOp)

    static let slots = 4
    /// Groups a run uses: root, a, a/b (nested), c.
    static let groups = 4
    static let maxPins = 4
    static let maxRegionPages = 48

    /// A random step; the weights favour page traffic, which is what makes reclaim run. With
    /// `transparent`, about a third of the steps go to the transparent region (an extra draw
    /// per step, so that runs without one replay the steps they always did).
    static func random(_ rng: inout SeededRandom, transparent: Bool = false) -> ModelOp {
        if transparent {
            let t = rng.next()
            if t % 100 < 35 { return .transparent(TransparentOp.random(t >> 8, &rng)) }
        }
        let r = rng.next()
        let a = Int((r >> 10) & 0xffff), b = Int((r >> 26) & 0xffff), c = Int((r >> 42) & 0xffff)
        let slot = a % slots
        switch r % 1000 {
        case 0..<280: return .write(slot: slot, page: b)
        case 280..<530: return .read(slot: slot, page: b)
        case 530..<550: return .readShared(page: b)
        case 550..<560: return .swapOutShared(page: b, count: 1 + c % 8)
        case 560..<610: return .pin(slot: slot, page: b, write: c & 1 == 0)
        case 610..<660: return .writePinned(index: b)
        case 660..<720: return .unpin(index: b)
        case 720..<800: return .swapOut(slot: slot, page: b, count: 1 + c % 16)
        case 800..<840: return .discard(slot: slot, page: b, count: 1 + c % 8)
        case 840..<870: return .create(slot: slot, pages: 1 + b % maxRegionPages, group: c % groups)
        case 870..<885: return .destroy(slot: slot)
        case 885..<905: return .memoryLimit(group: 1 + b % (groups - 1), pages: [nil, 8, 24, 48][c % 4])
        case 905..<910: return .swapLimit(group: 1 + b % (groups - 1), pages: [nil, nil, 64, 160][c % 4])
        case 910..<925: return .prefetch(slot: slot, page: b, count: 1 + c % 16)
        case 925..<932: return .advise(slot: slot, advice: b % 3)
        case 932..<935: return .toggleDevice
        default: return .verify(slot: slot)
        }
    }

    var description: String {
        switch self {
        case .create(let s, let n, let g): "create(slot: \(s), pages: \(n), group: \(g))"
        case .destroy(let s): "destroy(slot: \(s))"
        case .write(let s, let p): "write(slot: \(s), page: \(p))"
        case .read(let s, let p): "read(slot: \(s), page: \(p))"
        case .pin(let s, let p, let w): "pin(slot: \(s), page: \(p), write: \(w))"
        case .writePinned(let i): "writePinned(index: \(i))"
        case .unpin(let i): "unpin(index: \(i))"
        case .swapOut(let s, let p, let n): "swapOut(slot: \(s), page: \(p), count: \(n))"
        case .discard(let s, let p, let n): "discard(slot: \(s), page: \(p), count: \(n))"
        case .memoryLimit(let g, let n): "memoryLimit(group: \(g), pages: \(n.map(String.init) ?? "nil"))"
        case .swapLimit(let g, let n): "swapLimit(group: \(g), pages: \(n.map(String.init) ?? "nil"))"
        case .verify(let s): "verify(slot: \(s))"
        case .readShared(let p): "readShared(page: \(p))"
        case .swapOutShared(let p, let n): "swapOutShared(page: \(p), count: \(n))"
        case .prefetch(let s, let p, let n): "prefetch(slot: \(s), page: \(p), count: \(n))"
        case .advise(let s, let a): "advise(slot: \(s), advice: \(a))"
        case .toggleDevice: "toggleDevice"
        case .transparent(let op): "transparent(\(op))"
        }
    }
}

/// A model run that went wrong: at which step, how, and what was seen.
struct ModelFailure: Error, CustomStringConvertible {
    enum Kind: String, Sendable {
        case wrongBytes, impossibleState, unexpectedError, invariants, leak
        /// A folio left locked between steps of a lone model: the next access to it would wait
        /// forever, so the run stops here.
        case lockedFolio
    }
    let kind: Kind
    let step: Int
    let message: String
    var description: String { "step \(step): \(kind.rawValue): \(message)" }
}

/// A held pin. The pin is non-copyable, so it lives in a box; `bytes` is copied out at pin time
/// because reading it through the optional would consume the pin.
final class HeldPin {
    var pin: Pin?
    let bytes: UnsafeMutableRawBufferPointer
    /// The folio the pin holds: it stays held, and cannot be split or swapped out, also once
    /// its page is discarded.
    let folio: Folio
    let serial: Int
    let page: Int
    let group: Int
    let write: Bool
    /// Still the page's memory: false once the page was discarded or its region dropped.
    var live = true

    init(_ pin: consuming Pin, serial: Int, group: Int, write: Bool) {
        bytes = pin.bytes
        folio = pin.folio
        page = pin.page
        self.serial = serial
        self.group = group
        self.write = write
        self.pin = consume pin
    }
}

/// The reference model and the real space side by side: each step runs on both, then the space's
/// observable state is checked against the model. One thread drives one run; several runs can
/// share a space (each with its own regions and groups), and then checks that depend on nobody
/// else reclaiming (`strict`) are off.
final class SpaceModelRun {
    struct RegionModel {
        let region: Region
        /// Distinguishes the patterns of successive regions in one slot.
        let serial: Int
        let group: Int
        /// Generation of each page's bytes; 0 reads as zeros.
        var generation: [Int]
        /// The page table has an entry (a page read or written since creation or discard).
        var mapped: [Bool]
    }

    let space: SwapSpace
    /// The region all runs of the space share (see `makeShared`); its maker keeps it alive and
    /// drops it after `finish`, before checking that nothing leaked.
    unowned let shared: Region
    /// This run's groups: [root, a, a/b, c].
    let groups: [MemoryGroup]
    /// Checks that hold only when this run is alone in the space.
    let strict: Bool
    private(set) var slots: [RegionModel?] = Array(repeating: nil, count: ModelOp.slots)
    private(set) var pins: [HeldPin] = []
    var nextSerial = 1
    var nextGeneration = 1
    /// Scratch pages for checks: the expected bytes, and zeros.
    let expected = UnsafeMutableRawBufferPointer.allocate(byteCount: SwapPage.size, alignment: 16)
    private let zeros = UnsafeMutableRawBufferPointer.allocate(byteCount: SwapPage.size, alignment: 16)
    /// The run's transparent region and what its pages hold (nil: the run has none).
    var transparent: TransparentModel?
    /// How the run's own transparent region is served, for `.remake` (nil: none, or a shared one).
    let transparentService: TransparentRegion.FaultService?
    /// `.swapLimit` steps set limits (off where a transparent region shares the space with other
    /// runs: see `ModelSetup.swapLimits`).
    let swapLimits: Bool
    /// Plain loads and stores of the transparent region, and those not made because an
    /// out-of-memory error would have been excused (a fault cannot report one).
    var transparentTouches = 0
    var transparentSkipped = 0
    /// Counters, printed by the test.
    var verifiedPages = 0
    private(set) var outOfMemory = 0
    /// Out-of-memory errors that the state of the runs does not explain (their pins fill no limit
    /// and not the budget, no swap limit is reached): excused only where a swap limit on the
    /// path may hide reservations in flight (`concurrentOutOfMemoryJustified`).
    private(set) var unexplainedOutOfMemory = 0
    private(set) var swapFull = 0
    /// The space's fault-injecting device, if it has one: its failures are expected.
    let faults: FaultInjectingBackend?
    /// The space swaps to a compressed tier, which drops its copy of a page it loads.
    let exclusiveLoads: Bool
    /// The folio size of this run's regions (the shared one has single pages).
    let folioSize: Int
    /// Accesses that failed with an injected I/O error, and swapoffs refused.
    private(set) var injectedErrors = 0
    private(set) var deviceToggles = 0
    /// One device toggle at a time per process: two swapoffs of one device at once are not
    /// what this model checks.
    private static let toggling = Mutex<Void>(())

    /// A deliberately wrong model (discards keep the old bytes), to prove the checks and the
    /// shrinker catch a mismatch.
    let forgetDiscards: Bool
    /// What every run of the space holds pinned, and this run's index in it (nil: alone).
    let pinTally: (tally: PinTally, run: Int)?

    init(
        space: SwapSpace, shared: Region, name: String, strict: Bool, forgetDiscards: Bool = false,
        folioSize: Int = SwapPage.size, transparent: TransparentSetup? = nil, swapLimits: Bool = true,
        pinTally: (tally: PinTally, run: Int)? = nil
    ) throws {
        self.space = space
        self.pinTally = pinTally
        self.swapLimits = swapLimits
        self.folioSize = folioSize
        self.shared = shared
        self.strict = strict
        self.forgetDiscards = forgetDiscards
        faults = space.devices.lazy.compactMap { $0.backend as? FaultInjectingBackend }.first
        exclusiveLoads = space.devices.contains { $0.backend is CompressedTier }
        let a = try space.makeGroup(name: "\(name)a")
        let b = try space.makeGroup(name: "\(name)a/b", parent: a)
        let c = try space.makeGroup(name: "\(name)c")
        groups = [space.rootGroup, a, b, c]
        memset(zeros.baseAddress!, 0, SwapPage.size)
        switch transparent {
        case .own(let service):
            transparentService = service
            self.transparent = try makeTransparent(pages: Self.sharedPages)
        case .shared(let region, let index, let runs):
            transparentService = nil
            // Serials far above the runs' own: each run's stores carry a pattern of its own.
            self.transparent = TransparentModel(
                region: region, serial: (1 << 20) + index, group: 0, pages: Array(stride(from: index, to: region.pageCount, by: runs)),
                own: false)
        case nil:
            transparentService = nil
        }
    }

    deinit {
        expected.deallocate()
        zeros.deallocate()
    }

    // MARK: Steps

    /// Runs `op` on the space and the model, then checks the space against the model.
    func apply(_ op: ModelOp, step: Int) throws(ModelFailure) {
        if let (tally, run) = pinTally {
            // The step's access may hold one folio of its page for a moment, a new pin one
            // for good: published before it can, lowered to the held pins after.
            tally.publish(run: run, frames: pinnedFrames(in: 0) + folioSize / SwapPage.size)
        }
        defer { if let (tally, run) = pinTally { tally.publish(run: run, frames: pinnedFrames(in: 0)) } }
        switch op {
        case .create(let s, let pages, let g):
            drop(slot: s)
            let region: Region
            do {
                region = try space.makeRegion(bytes: pages * SwapPage.size, group: g == 0 ? nil : groups[g], folioSize: folioSize)
            } catch {
                throw ModelFailure(kind: .unexpectedError, step: step, message: "makeRegion: \(error)")
            }
            slots[s] = RegionModel(
                region: region, serial: nextSerial, group: g,
                generation: Array(repeating: 0, count: pages), mapped: Array(repeating: false, count: pages))
            nextSerial += 1
        case .destroy(let s):
            drop(slot: s)
        case .write(let s, let p):
            guard let m = slots[s] else { return }
            let page = p % m.region.pageCount
            let g = nextGeneration
            let done = try access(step, m, page) { try m.region.withPage(page, for: .write) { Self.fill($0, Self.tag(m, page, g)) } }
            if done {
                nextGeneration += 1
                slots[s]!.generation[page] = g
                markMapped(s, page)
                try expectResident(step, s, page)
            }
        case .read(let s, let p):
            guard let m = slots[s] else { return }
            let page = p % m.region.pageCount
            try read(step, s, page)
        case .pin(let s, let p, let write):
            guard let m = slots[s], pins.count < ModelOp.maxPins else { return }
            let page = p % m.region.pageCount
            var held: HeldPin?
            _ = try access(step, m, page) {
                held = HeldPin(try m.region.pin(page, for: write ? .write : .read), serial: m.serial, group: m.group, write: write)
            }
            guard let held else { return }
            markMapped(s, page)
            try check(step, held.bytes, m, page, what: "a new pin")
            pins.append(held)
            try expectResident(step, s, page)
        case .writePinned(let i):
            let writable = pins.filter(\.write)
            guard !writable.isEmpty else { return }
            let held = writable[i % writable.count]
            let g = nextGeneration
            nextGeneration += 1
            if held.live, let s = slot(ofSerial: held.serial) {
                Self.fill(held.bytes, Self.tag(slots[s]!, held.page, g))
                slots[s]!.generation[held.page] = g
            } else {
                // A stale pin: its folio is nobody's page any more; scribbling on it must not show.
                Self.fill(held.bytes, UInt64(truncatingIfNeeded: g) &* 0xdead_beef)
            }
        case .unpin(let i):
            guard !pins.isEmpty else { return }
            let held = pins.remove(at: i % pins.count)
            held.pin = nil
        case .swapOut(let s, let p, let n):
            guard let m = slots[s] else { return }
            let range = (p % m.region.pageCount)..<min(m.region.pageCount, p % m.region.pageCount + n)
            let candidates = range.filter { canSwapOut(m, $0, within: range) }
            // A device that gives its copy up when a page is read (a compressed tier's exclusive
            // loads) leaves pages read ahead as the only copy, dirty in the swap cache: swap-out
            // writes those too and counts them.
            let cachedOnly = exclusiveLoads ? range.filter { m.region.state(ofPage: $0) == .swapped }.count : 0
            var freed = 0
            _ = try access(step, m, range.lowerBound, swapOut: true) { freed = try m.region.swapOut(pages: range) }
            let expected = candidates.count...(candidates.count + cachedOnly)
            if strict && faults == nil && !expected.contains(freed) && !(freed < candidates.count && swapFullJustified(m.group)) {
                throw ModelFailure(
                    kind: .impossibleState, step: step,
                    message:
                        "swapOut(\(range)) freed \(freed) of \(candidates.count) unpinned resident pages (and \(cachedOnly) swapped ones that may be cached)"
                )
            }
            if strict && faults == nil && freed >= candidates.count {
                for page in candidates where m.region.state(ofPage: page) != .swapped {
                    throw ModelFailure(
                        kind: .impossibleState, step: step,
                        message: "page \(page) of slot \(s) is \(m.region.state(ofPage: page)) right after its swap-out")
                }
            }
        case .discard(let s, let p, let n):
            guard let m = slots[s] else { return }
            let range = (p % m.region.pageCount)..<min(m.region.pageCount, p % m.region.pageCount + n)
            do { try m.region.discard(pages: range) } catch {
                throw ModelFailure(kind: .unexpectedError, step: step, message: "discard(\(range)): \(error)")
            }
            for page in range {
                if !forgetDiscards { slots[s]!.generation[page] = 0 }
                slots[s]!.mapped[page] = false
                for held in pins where held.serial == m.serial && held.page == page { held.live = false }
            }
        case .memoryLimit(let g, let pages):
            groups[g].memoryLimit = pages.map { $0 * SwapPage.size }
        case .swapLimit(let g, let pages):
            guard swapLimits else { return }
            groups[g].swapLimit = pages.map { $0 * SwapPage.size }
        case .verify(let s):
            guard let m = slots[s] else { return }
            for page in 0..<m.region.pageCount { try read(step, s, page) }
        case .readShared(let p):
            let page = p % shared.pageCount
            var seen: ModelFailure?
            let model = Self.sharedModel(shared)
            _ = try access(step, model, page) {
                try shared.withPage(page, for: .read) { bytes in
                    do throws(ModelFailure) { try check(step, bytes, model, page, what: "a shared read") } catch { seen = error }
                }
            }
            if let seen { throw seen }
        case .swapOutShared(let p, let n):
            let range = (p % shared.pageCount)..<min(shared.pageCount, p % shared.pageCount + n)
            _ = try access(step, Self.sharedModel(shared), range.lowerBound, swapOut: true) { try shared.swapOut(pages: range) }
        case .prefetch(let s, let p, let n):
            guard let m = slots[s] else { return }
            let range = (p % m.region.pageCount)..<min(m.region.pageCount, p % m.region.pageCount + n)
            _ = try access(step, m, range.lowerBound) { _ = try m.region.prefetch(pages: range) }
        case .advise(let s, let a):
            guard let m = slots[s] else { return }
            let advice: Region.Advice = [.normal, .sequential, .random][a % 3]
            _ = try access(step, m, 0) { try m.region.advise(advice) }
        case .toggleDevice:
            try Self.toggling.withLock { _ throws(ModelFailure) in try toggleDevice(step) }
        case .transparent(let op):
            try apply(op, step: step)
        }
        try checkStates(step)
        if strict { try checkNoLockedFolio(step) }
    }

    /// Between steps of a lone model nobody holds a folio lock or has a write in flight (the
    /// invariant walker checks the same, but only every few hundred steps; a leaked lock makes
    /// the next access to its page wait forever).
    func checkNoLockedFolio(_ step: Int) throws(ModelFailure) {
        // Asynchronous readahead windows hold their folios locked until their read completes:
        // that is a read in flight, not a leak.
        space.engine.cache.asyncReads.waitUntilIdle()
        let frames = space.engine.frames
        var frame: UInt32 = 0
        var stuck: [String] = []
        while Int(frame) < frames.frameCount {
            let f = frames.folio(containing: frame)
            // A free frame may still name an old folio head: step by one unless it heads a live one.
            guard f.frame == frame, frames.refcount(f) > 0 else {
                frame += 1
                continue
            }
            frame += UInt32(frames.pageCount(f))
            let flags = frames.flags(f)
            guard flags.contains(.locked) || flags.contains(.writeback) else { continue }
            stuck.append("\(f) \(flags) refs \(frames.refcount(f)) owner \(frames.owner(f))")
        }
        guard !stuck.isEmpty else { return }
        throw ModelFailure(
            kind: .lockedFolio, step: step,
            message: "\(stuck.count) folio(s) locked between steps: " + stuck.prefix(4).joined(separator: "; "))
    }

    /// Reads one page and checks it.
    private func read(_ step: Int, _ s: Int, _ page: Int) throws(ModelFailure) {
        let m = slots[s]!
        var seen: ModelFailure?
        let done = try access(step, m, page) {
            try m.region.withPage(page, for: .read) { bytes in
                do throws(ModelFailure) { try check(step, bytes, m, page, what: "a read") } catch { seen = error }
            }
        }
        if let seen { throw seen }
        if done {
            markMapped(s, page)
            try expectResident(step, s, page)
        }
    }

    /// The page is mapped after an access; with large folios, so may be the other pages of its
    /// folio (an access maps the whole folio, zeros where never written, unless memory or swap
    /// was too fragmented and it fell back to a single page): those the region shows mapped.
    private func markMapped(_ s: Int, _ page: Int) {
        slots[s]!.mapped[page] = true
        let perFolio = folioSize / SwapPage.size
        guard perFolio > 1 else { return }
        let region = slots[s]!.region
        let first = page / perFolio * perFolio
        for q in first..<min(region.pageCount, first + perFolio) where !slots[s]!.mapped[q] {
            if region.state(ofPage: q) != .untouched { slots[s]!.mapped[q] = true }
        }
    }

    /// Swaps a second device on, or off when it is on. Swapoff may be refused when memory and the
    /// first device cannot take its pages (`.outOfMemory`) or, on a faulty device, when a page
    /// cannot be read (`.ioError`); the pages stay where they were, and later reads check them.
    private func toggleDevice(_ step: Int) throws(ModelFailure) {
        deviceToggles += 1
        if let second = space.devices.first(where: { $0.priority == -1 }) {
            do { try space.swapOff(second) } catch {
                guard error.code == .outOfMemory || (faults != nil && error.code == .ioError) else {
                    throw ModelFailure(kind: .unexpectedError, step: step, message: "swapOff of the second device: \(error)")
                }
                injectedErrors += error.code == .ioError ? 1 : 0
            }
        } else {
            do { _ = try space.swapOn(.memory(bytes: (1 + 512) * SwapPage.size, priority: -1)) } catch {
                throw ModelFailure(kind: .unexpectedError, step: step, message: "swapOn of a second device: \(error)")
            }
        }
    }

    /// Runs an access; returns false if it failed with an error the model allows at this point
    /// (out of memory with the group's frames pinned, swap full at a swap limit), throws a
    /// failure for any other error.
    func access(
        _ step: Int, _ m: RegionModel, _ page: Int, swapOut: Bool = false,
        _ body: () throws -> Void
    ) throws(ModelFailure) -> Bool {
        if let (tally, run) = pinTally { tally.beginAccess(run: run) }
        do {
            try body()
            return true
        } catch let e as SwapError where faults != nil && (e.code == .ioError || e.code == .diskFull) {
            // An injected failure: nothing moved, and the page is checked again later.
            injectedErrors += 1
            return false
        } catch let e as SwapError where e.code == .outOfMemory && !swapOut {
            outOfMemory += 1
            // Frames held by a leaked folio lock explain an out-of-memory error better than
            // anything below, and the next access to one of them would wait forever.
            if strict { try checkNoLockedFolio(step) }
            let explained = strict ? outOfMemoryJustified(m.group) : concurrentOutOfMemoryExplained(m.group)
            if !explained { unexplainedOutOfMemory += 1 }
            if strict ? !explained : !concurrentOutOfMemoryJustified(m.group) {
                throw ModelFailure(
                    kind: .unexpectedError, step: step,
                    message: (strict ? "" : "engine bug, the pins of all runs leave room in the budget and no group is at its swap limit: ")
                        + "out of memory at page \(page) of region \(m.serial) (group \(m.group)) with only \(pinnedFrames(in: 0)) frames pinned\(strict ? "" : " by this run, \(pinTally.map { "at most \($0.tally.othersPeak(run: $0.run)) by the others, " } ?? "")\(space.residentFrames) of \(space.frameCount) frames resident"); \(groupState(m.group)); swap limits reached: [\(swapLimitedGroups())]; now \(space.engine.allocator.census()): \(e)"
                )
            }
            return false
        } catch let e as SwapError where e.code == .swapFull && swapOut {
            swapFull += 1
            if !swapFullJustified(m.group) {
                let limits = path(m.group).map { g in
                    "\(g.name.isEmpty ? "root" : g.name) \(g.swapUsage / SwapPage.size)/\(g.swapLimit.map { String($0 / SwapPage.size) } ?? "-")"
                }
                let free = space.devices.map { "\($0.freePages) of \($0.usablePages)" }
                throw ModelFailure(
                    kind: .unexpectedError, step: step,
                    message:
                        "swap full with no swap limit reached (swap pages charged/limit: \(limits.joined(separator: ", ")); free slots: \(free.joined(separator: ", "))): \(e)"
                )
            }
            return false
        } catch let e as ModelFailure {
            throw e
        } catch {
            throw ModelFailure(kind: .unexpectedError, step: step, message: "page \(page) of region \(m.serial): \(error)")
        }
    }

    // MARK: Checks

    /// The pattern of a page: one word naming region, page and generation, repeated. (The
    /// shared `fill`/`matches` helpers vary every word, but their loops cost more than the
    /// engine's own work in a debug build; a page of another region, page or generation, zeros,
    /// or a partly transferred page still fail the comparison.)
    static func tag(_ m: RegionModel, _ page: Int, _ generation: Int) -> UInt64 {
        tag(serial: m.serial, page: page, generation: generation)
    }

    static func tag(serial: Int, page: Int, generation: Int) -> UInt64 {
        var z = UInt64(serial) << 40 ^ UInt64(page) << 24 ^ UInt64(generation)
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return (z ^ (z >> 31)) | 1  // never zero
    }

    /// Fills a page with `tag` by doubling copies (libc, so it is fast in a debug build too).
    static func fill(_ bytes: UnsafeMutableRawBufferPointer, _ tag: UInt64) {
        let base = bytes.baseAddress!
        base.storeBytes(of: tag, as: UInt64.self)
        var done = 8
        while done < bytes.count {
            let n = min(done, bytes.count - done)
            memcpy(base + done, base, n)
            done += n
        }
    }

    private func check(
        _ step: Int, _ bytes: UnsafeMutableRawBufferPointer, _ m: RegionModel, _ page: Int,
        what: String
    ) throws(ModelFailure) {
        verifiedPages += 1
        let g = m.generation[page]
        if g != 0 { Self.fill(expected, Self.tag(m, page, g)) }
        let ok = memcmp(bytes.baseAddress!, (g == 0 ? zeros : expected).baseAddress!, SwapPage.size) == 0
        if !ok {
            let word = bytes.load(as: UInt64.self)
            throw ModelFailure(
                kind: .wrongBytes, step: step,
                message:
                    "\(what) of page \(page) of region \(m.serial) (slot region, \(m.region.pageCount) pages) expected generation \(g), first word \(String(word, radix: 16))"
            )
        }
    }

    private func expectResident(_ step: Int, _ s: Int, _ page: Int) throws(ModelFailure) {
        guard strict else { return }
        let state = slots[s]!.region.state(ofPage: page)
        if state != .resident {
            throw ModelFailure(kind: .impossibleState, step: step, message: "page \(page) of slot \(s) is \(state) right after an access")
        }
    }

    /// Every page of every region is in a state the model allows: untouched iff never mapped,
    /// resident while pinned, resident or swapped otherwise.
    func checkStates(_ step: Int) throws(ModelFailure) {
        for (s, m) in slots.enumerated() {
            guard let m else { continue }
            for page in 0..<m.region.pageCount {
                // Under the page-table lock: another thread's reclaim, trying to unmap a pinned
                // page, stores the swap entry and puts the old one back when it sees the pin
                // (kernel: try_to_unmap_one restoring the PTE), all under that lock. A state read
                // without it may catch that moment; a state read with it is the page's.
                let lock = m.region.ptl(page)
                lock.lock()
                let state = m.region.state(ofPage: page)
                lock.unlock()
                let ok = allowed(state, m, page)
                if !ok {
                    throw ModelFailure(
                        kind: .impossibleState, step: step,
                        message:
                            "page \(page) of slot \(s) is \(state); the model has it \(m.mapped[page] ? "mapped" : "unmapped")\(isPinned(m.serial, page) ? " and pinned" : "")"
                    )
                }
            }
        }
    }

    private func allowed(_ state: Region.PageState, _ m: RegionModel, _ page: Int) -> Bool {
        !m.mapped[page] ? state == .untouched : isPinned(m.serial, page) ? state == .resident : state != .untouched
    }

    /// Whether an explicit swap-out of `range` must take `page`: it is resident and its folio
    /// can go — no pin holds it (a pin of a page of the folio discarded since holds it too),
    /// and, when `range` covers it only in part, it can be split (it is not in the swap cache).
    private func canSwapOut(_ m: RegionModel, _ page: Int, within range: Range<Int>) -> Bool {
        guard m.region.state(ofPage: page) == .resident, !isPinned(m.serial, page) else { return false }
        let pte = m.region.pte(page)
        guard pte.isPresent else { return false }
        let frames = m.region.engine.frames
        let f = frames.folio(containing: pte.frame)
        let nr = frames.pageCount(f)
        for held in pins where held.folio == f { return false }
        guard nr > 1 else { return true }
        let base = page - Int(pte.frame - f.frame)
        let covered = range.contains(base) && range.contains(base + nr - 1)
        return covered || !frames.flags(f).contains(.swapcache)
    }

    private func isPinned(_ serial: Int, _ page: Int) -> Bool {
        // A plain loop: `contains(where:)` is generic and slow in a debug build.
        for held in pins where held.live && held.serial == serial && held.page == page { return true }
        return false
    }

    private func slot(ofSerial serial: Int) -> Int? { slots.firstIndex { $0?.serial == serial } }

    /// What reclaim could find in the groups on `g`'s path, for a failure's message.
    private func groupState(_ g: Int) -> String {
        path(g).map { group in
            let lru = group.lru
            return "\(group.name.isEmpty ? "root" : group.name): \(group.memoryUsage / SwapPage.size) pages charged, "
                + "LRU \(lru.pages(.inactive)) inactive + \(lru.pages(.active)) active, \(lru.isolated.load(ordering: .relaxed)) isolated"
        }.joined(separator: "; ") + "; free slots " + space.devices.map { "\($0.freePages) of \($0.usablePages)" }.joined(separator: ", ")
    }

    /// The space's groups (every run's) whose swap limit is reached, with their pages charged and
    /// swap charged and reserved: their resident pages cannot be swapped out.
    private func swapLimitedGroups() -> String {
        space.engine.groups.list.compactMap { g in
            guard let limit = g.swapLimit, Self.atSwapLimit(g) else { return nil }
            return
                "\(g.name) \(g.memoryUsage / SwapPage.size) pages, swap \(g.swapUsage / SwapPage.size)+\(g.swapReservedUsage / SwapPage.size)/\(limit / SwapPage.size)"
        }.joined(separator: ", ")
    }

    /// Frames the held pins keep in `group` and the groups nested in it (root: all of this run's).
    private func pinnedFrames(in group: Int) -> Int {
        // A pin holds its whole folio: with large folios, every frame of it.
        let perFolio = folioSize / SwapPage.size
        var live = Set<Int>()
        var stale = 0
        for held in pins where group == 0 || isAncestor(group, of: held.group) {
            if held.live { live.insert(held.serial << 12 | held.page / perFolio) } else { stale += 1 }
        }
        return (live.count + stale) * perFolio
    }

    private func isAncestor(_ a: Int, of g: Int) -> Bool {
        var x: MemoryGroup? = groups[g]
        while let y = x {
            if y === groups[a] { return true }
            x = y.parent
        }
        return false
    }

    /// The groups whose limits apply to a page of group `g`, nearest first.
    private func path(_ g: Int) -> [MemoryGroup] {
        var out: [MemoryGroup] = []
        var x: MemoryGroup? = groups[g]
        while let y = x {
            out.append(y)
            x = y.parent
        }
        return out
    }

    /// Out of memory is allowed when pins fill a limit or the budget, or when a swap limit
    /// is reached (reclaim then cannot move pages out).
    func outOfMemoryJustified(_ g: Int, needed: Int? = nil) -> Bool {
        // The access needs a folio's frames (a large one, or one page after a fallback).
        let needed = needed ?? folioSize / SwapPage.size
        if pinnedFrames(in: 0) + needed > space.frameCount { return true }
        for group in path(g) {
            let index = groups.firstIndex { $0 === group }!
            if let limit = group.memoryLimit, pinnedFrames(in: index) + needed > limit / SwapPage.size { return true }
        }
        // Reserved swap counts: a lone model has none in flight between steps, but a dirty page
        // whose write failed (a faulty device) keeps its reservation until a write succeeds.
        return groups.contains { g in g.swapLimit.map { g.swapUsage + g.swapReservedUsage + SwapPage.size > $0 } ?? false }
    }

    /// Out of memory is allowed too when a group on `g`'s path is over its memory limit by more
    /// pages than it can still move to swap: a limit lowered below the group's usage makes the
    /// next charge reclaim the difference (and `needed` more) from the group and the groups
    /// nested in it, and their swap limits — theirs, or an ancestor's — may take fewer pages
    /// than that. Reclaim then fills a swap limit and the charge fails. An explicit access is
    /// judged after its error, when that limit is reached (`outOfMemoryJustified` holds); a
    /// plain touch of a transparent region cannot report one and is judged before, so it needs
    /// this. Pins are left out of the count (they would only make it smaller).
    func swapLimitsStopReclaim(_ g: Int, needed: Int) -> Bool {
        for group in path(g) {
            guard let limit = group.memoryLimit else { continue }
            let excess = group.memoryUsage / SwapPage.size + needed - limit / SwapPage.size
            guard excess > 0 else { continue }
            var room = swappable(group)
            var outer = group.parent
            while let o = outer {
                room = min(room, Self.swapRoom(o))
                outer = o.parent
            }
            if excess > room { return true }
        }
        return false
    }

    /// Pages a group's swap limit still takes (`Int.max` without a limit).
    private static func swapRoom(_ g: MemoryGroup) -> Int {
        guard let limit = g.swapLimit else { return Int.max }
        return max(0, (limit - g.swapUsage - g.swapReservedUsage) / SwapPage.size)
    }

    /// Pages charged to `group` and the groups nested in it that reclaim could move to swap
    /// under their swap limits.
    private func swappable(_ group: MemoryGroup) -> Int {
        let children = space.engine.groups.list.filter { $0.parent === group }
        let own = group.memoryUsage / SwapPage.size - children.reduce(0) { $0 + $1.memoryUsage / SwapPage.size }
        return min(Self.swapRoom(group), children.reduce(own) { $0 + swappable($1) })
    }

    /// Out of memory with other runs on the space, for the group of `g`, explained by what every
    /// run holds: what a lone run allows (its own pins fill a limit on the path or the budget,
    /// or one of its swap limits is reached), or the budget filled by what no reclaim can free
    /// — the pins of all runs (`PinTally`: at most what the others held while the access ran,
    /// plus its own) and the pages of every group at its swap limit, any run's. Its own groups
    /// are charged by its own pages only, so another run's pins never fill them; the root group
    /// has no memory limit.
    func concurrentOutOfMemoryExplained(_ g: Int) -> Bool {
        if outOfMemoryJustified(g) { return true }
        guard let (tally, run) = pinTally else { return false }
        return tally.othersPeak(run: run) + pinnedFrames(in: 0) + swapLockedFrames() + folioSize / SwapPage.size > space.frameCount
    }

    /// What a concurrent run lets pass: an explained error (`concurrentOutOfMemoryExplained`), or
    /// one that a swap limit may explain — on the group's path (swap-outs in flight on other
    /// threads reserve swap that nobody can observe), or reached by any group of the space
    /// (its pages may have filled the budget a moment ago, and left it by the time the run
    /// looks): those count as unexplained. Anything else, an out-of-memory error while the pins
    /// of all runs leave room in the budget and no swap limit holds pages in, is the engine's
    /// bug.
    private func concurrentOutOfMemoryJustified(_ g: Int) -> Bool {
        concurrentOutOfMemoryExplained(g) || path(g).contains { $0.swapLimit != nil }
            || space.engine.groups.list.contains { Self.atSwapLimit($0) }
    }

    /// Whether `g`'s swap limit is reached: its charged and reserved swap leave no page free.
    static func atSwapLimit(_ g: MemoryGroup) -> Bool {
        g.swapLimit.map { g.swapUsage + g.swapReservedUsage + SwapPage.size > $0 } ?? false
    }

    /// Frames charged to groups at their swap limit (any run's; a nested group once, within the
    /// outermost limited one): reclaim cannot write them out.
    private func swapLockedFrames() -> Int {
        let limited = space.engine.groups.list.filter { Self.atSwapLimit($0) }
        return limited.reduce(0) { sum, g in
            var outer = g.parent
            while let o = outer, !limited.contains(where: { $0 === o }) { outer = o.parent }
            return outer == nil ? sum + g.memoryUsage / SwapPage.size : sum
        }
    }

    /// Swap full is allowed when a swap limit on the group's path is reached. The limit covers
    /// the swap charged plus the swap reserved by swap-outs in flight (`MemoryGroup.swapFits`),
    /// and reclaim reserves a whole batch at a time; the reservations are not observable, and
    /// alone in the space a model has none in flight between steps. With other threads
    /// reclaiming its pages, a model can only tell that a limit is set.
    func swapFullJustified(_ g: Int) -> Bool {
        path(g).contains { g in
            guard let limit = g.swapLimit else { return false }
            return !strict || g.swapUsage + g.swapReservedUsage + SwapPage.size > limit
        }
    }

    // MARK: The shared region

    static let sharedPages = 32

    /// The model of the shared region: serial 0, every page at generation 1, root group.
    static func sharedModel(_ region: Region) -> RegionModel {
        RegionModel(
            region: region, serial: 0, group: 0, generation: Array(repeating: 1, count: region.pageCount),
            mapped: Array(repeating: true, count: region.pageCount))
    }

    /// Makes the shared region of a space and writes every page of it.
    static func makeShared(_ space: SwapSpace) throws -> Region {
        let region = try space.makeRegion(bytes: sharedPages * SwapPage.size)
        let model = sharedModel(region)
        for page in 0..<sharedPages { try region.withPage(page) { fill($0, tag(model, page, 1)) } }
        return region
    }

    // MARK: Teardown

    /// Reads back every page, then drops every pin and region and lifts the limits.
    func finish(step: Int) throws(ModelFailure) {
        // The final read-back is strict: every page, and nothing excused by an injected fault.
        faults?.removeAllFaults()
        for g in groups.dropFirst() {
            g.memoryLimit = nil
            g.swapLimit = nil
        }
        for page in 0..<shared.pageCount { try apply(.readShared(page: page), step: step) }
        for s in slots.indices where slots[s] != nil {
            for page in 0..<slots[s]!.region.pageCount { try read(step, s, page) }
        }
        try apply(TransparentOp.verify, step: step)
        for held in pins { held.pin = nil }
        pins.removeAll()
        for s in slots.indices { drop(slot: s) }
        // An own region goes now (a shared one, with the space's other runs).
        transparent = nil
    }

    private func drop(slot s: Int) {
        guard let m = slots[s] else { return }
        for held in pins where held.serial == m.serial { held.live = false }
        slots[s] = nil
    }
}
