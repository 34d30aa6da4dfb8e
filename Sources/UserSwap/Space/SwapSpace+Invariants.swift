/// The invariant walker of a space (docs/RELIABILITY.md), for one-word slots and indexed frames.
/// Meant for a quiet space: tests call it after their threads joined.
extension SwapSpace {
    /// Returns a description of every broken invariant (empty when all hold). The background
    /// reclaimer is held between passes meanwhile; other threads must be quiet.
    public func checkInvariants() -> [String] {
        // Readahead windows still being read are no quiet state: let them finish.
        engine.cache.asyncReads.waitUntilIdle()
        // The slot reclaimer holds a cluster off every list during its pass.
        let walk = { self.slotReclaimer?.paused { self.walkInvariants() } ?? self.walkInvariants() }
        if let kswapd = engine.reclaimer.kswapd.withLock({ $0 }) { return kswapd.paused(walk) }
        return walk()
    }

    private func walkInvariants() -> [String] {
        var problems: [String] = []
        let frames = engine.frames
        for device in devices {
            problems += device.checkInvariants().map { "device \(device.type): \($0)" }
            // Every slot holding a folio: the folio is cached at this very slot.
            for offset in 1..<device.pageCount {
                let entry = SwapEntry(type: device.type, offset: offset)
                let slot = device.slot(entry)
                guard slot.isFolio else { continue }
                let f = Folio(frame: slot.frame)
                if !frames.matches(f, entry) {
                    problems.append("\(entry) holds \(f), which does not claim it (flags \(frames.flags(f)), entry \(frames.entry(f)))")
                } else if frames.refcount(f) < frames.pageCount(f) {
                    problems.append("\(f) in the cache with \(frames.refcount(f)) references, fewer than its \(frames.pageCount(f)) slots")
                }
                if slot.hasCache, case .swapCache = engine.sync {
                    problems.append("\(entry) has the legacy has-cache bit under the swap-cache protocol")
                }
            }
        }
        // Every cached folio: each of its slots names it.
        var frame: UInt32 = 0
        var busy = 0
        var placed: [Int: Int] = [:]
        while Int(frame) < frames.frameCount {
            let f = frames.folio(containing: frame)
            let nr = frames.pageCount(f)
            // A free frame may still name the head of a folio it once belonged to: step by one
            // unless this frame heads a live folio.
            guard f.frame == frame, frames.refcount(f) > 0 else {
                frame += 1
                continue
            }
            defer { frame += UInt32(nr) }
            busy += nr
            let placement = frames.placement(f)
            if !placement.isArena {
                placed[placement.windowSlot, default: 0] += 1
                // A folio whose bytes are a window page owns that page (no quiet folio is a
                // racer that lost its insert).
                if engine.allocator.windows[placement.windowSlot].owner(placement.page) != f.frame + 1 {
                    problems.append(
                        "\(f) lives at page \(placement.page) of window \(placement.windowSlot), which another frame owns (\(engine.allocator.windows[placement.windowSlot].owner(placement.page)))"
                    )
                }
            }
            let flags = frames.flags(f)
            if flags.contains(.locked) || flags.contains(.writeback) {
                problems.append("\(f) still \(flags) on a quiet space")
            }
            guard flags.contains(.swapcache) else {
                if flags.contains(.dirty) == false && flags.contains(.uptodate) == false {
                    problems.append("\(f) in use but neither uptodate nor dirty")
                }
                continue
            }
            let entry = frames.entry(f)
            guard let device = engine.devices.device(for: entry) else {
                problems.append("\(f) cached for \(entry) on a missing device")
                continue
            }
            for i in 0..<nr {
                let s = device.slot(entry.advanced(by: i))
                if !s.isFolio || s.frame != f.frame {
                    problems.append("\(f) claims \(entry.advanced(by: i)), which holds \(s)")
                }
            }
        }
        problems += checkWindows(placed: placed)
        problems += checkGroupCharges()
        if busy != residentFrames {
            problems.append("\(busy) frames in use by folios but the pool says \(residentFrames)")
        }
        return problems
    }

    /// Transparent regions: a page the region maps lives in its own window page, owned by its
    /// folio; each window counts exactly the folios placed in it.
    private func checkWindows(placed: [Int: Int]) -> [String] {
        var problems: [String] = []
        let frames = engine.frames
        let regions = engine.reverseMap.all.compactMap { $0 as? Region }
        for region in regions {
            guard let window = region.window else { continue }
            let live = window.liveFolios.load(ordering: .acquiring)
            if live != placed[window.slot, default: 0] {
                problems.append("window \(window.slot) counts \(live) folios but \(placed[window.slot, default: 0]) live in it")
            }
            for page in 0..<region.pageCount {
                let pte = region.pte(page)
                guard pte.isPresent else { continue }
                let f = frames.folio(containing: pte.frame)
                if frames.placement(f) != FramePlacement(window: window, page: page) {
                    problems.append(
                        "page \(page) of transparent region \(region.id) maps \(f), whose bytes are elsewhere (\(frames.placement(f).raw))")
                }
            }
        }
        return problems
    }

    /// Group charges add up: each group's memory usage is the pages of the folios charged to it
    /// and its descendants; its swap usage is the charged slots whose shadow names it or a
    /// descendant. And every page of a region that lives only on swap (its slot holds no
    /// folio) has its owner recorded: the slot is charged to the region's group (kernel: a
    /// swapped-out slot keeps its swap cgroup record while its count is above 0); otherwise its
    /// group's swap limit would not count it.
    private func checkGroupCharges() -> [String] {
        let frames = engine.frames
        let all = engine.groups.list
        var memory = [Int](repeating: 0, count: all.count)
        var swap = [Int](repeating: 0, count: all.count)
        func addUp(_ counts: inout [Int], _ id: Int, _ n: Int) {
            var g: MemoryGroup? = engine.groups[id]
            while let group = g {
                counts[group.id] += n
                g = group.parent
            }
        }
        var frame: UInt32 = 0
        while Int(frame) < frames.frameCount {
            let f = frames.folio(containing: frame)
            let nr = frames.pageCount(f)
            if f.frame == frame && frames.refcount(f) > 0 {
                addUp(&memory, frames.group(f), nr)
                frame += UInt32(nr)
            } else {
                frame += 1
            }
        }
        var problems: [String] = []
        for device in devices {
            for offset in 1..<device.pageCount {
                let s = device.slot(SwapEntry(type: device.type, offset: offset))
                guard s.isSwapCharged else { continue }
                if !s.isShadow {
                    problems.append("slot \(offset) of device \(device.type) is charged but holds \(s)")
                    continue
                }
                addUp(&swap, Shadow(packed: s.payload).group, 1)
            }
        }
        let regions = engine.reverseMap.all.compactMap { $0 as? Region }
        for region in regions {
            for page in 0..<region.pageCount {
                let pte = region.pte(page)
                guard pte.isSwap, let device = engine.devices.device(for: pte.swapEntry) else { continue }
                let s = device.slot(pte.swapEntry)
                if s.isFolio || s.hasCache { continue }
                if !s.isSwapCharged {
                    problems.append("page \(page) of region \(region.id) lives only on swap at \(pte.swapEntry), charged to no group: \(s)")
                } else if s.isShadow && Shadow(packed: s.payload).group != region.group {
                    problems.append(
                        "page \(page) of region \(region.id) (group \(region.group)) is charged to group \(Shadow(packed: s.payload).group)"
                    )
                }
            }
        }
        for g in all {
            if g.memoryUsage != memory[g.id] * SwapPage.size {
                problems.append("group \(g.name): memory usage \(g.memoryUsage) but its folios hold \(memory[g.id] * SwapPage.size)")
            }
            if g.swapUsage != swap[g.id] * SwapPage.size {
                problems.append("group \(g.name): swap usage \(g.swapUsage) but \(swap[g.id]) slots are charged to it")
            }
        }
        return problems
    }
}
