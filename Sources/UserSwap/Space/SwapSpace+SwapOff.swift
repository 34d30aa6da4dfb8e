/// Adding and removing swap devices while the space is in use (kernel: `swapon`, `swapoff` with
/// `try_to_unuse`).
extension SwapSpace {
    /// Adds a swap device at run time (kernel: `swapon`). Same as `addDevice(_:)`.
    @discardableResult
    public func swapOn(_ device: DeviceConfiguration) throws(SwapError) -> SwapDevice {
        try addDevice(device)
    }

    /// Removes `device` (kernel: `swapoff`): stops allocation on it, brings every page it holds
    /// back into memory — from the swap cache, or by reading it as a fault would — and releases it
    /// once nothing refers to it. Other threads keep working meanwhile; pages reclaim pushes out
    /// again go to the other devices.
    ///
    /// Retries until the device is empty, as the kernel's `try_to_unuse` does: what a pass
    /// cannot bring back yet (a swap-out still writing a page it took a slot for, a page being
    /// read, a region being released) it waits for, asleep until the device changes, not on a
    /// timer. It fails only on what it cannot get past: `.outOfMemory` when RAM and the other
    /// devices cannot hold the data, or `.ioError` naming the pages it could not read. The device
    /// then stays in service and nothing is lost.
    public func swapOff(_ device: SwapDevice) throws(SwapError) {
        guard engine.devices.devices.contains(where: { $0 === device }) else {
            throw SwapError(.invalidArgument, "swap device \(device.type) is not in this space")
        }
        // Claims the device: one swapoff at a time (kernel: `swapoff` finds `SWP_WRITEOK` clear
        // and fails with EINVAL). Acquiring and releasing: a claim after a failed swapoff sees
        // what that one left.
        guard device.writeOK.compareExchange(expected: true, desired: false, ordering: .acquiringAndReleasing).exchanged else {
            throw SwapError(.invalidArgument, "swap device \(device.type) is already being removed by another swapoff")
        }
        // Before the first look at the device: every change after it wakes a wait below.
        device.progress.startWatching()
        defer { device.progress.stopWatching() }
        do throws(SwapError) {
            while true {
                while device.usedPages > 0 {
                    let generation = device.progress.generation
                    let used = device.usedPages
                    yieldPoint(.swapOffBeforeUnuse)
                    let pass = try unuse(device)
                    guard pass.unread.isEmpty else { throw Self.unreadable(pass.unread, device: device) }
                    if device.usedPages > 0 && device.usedPages >= used && pass.broughtBack == 0 {
                        // Nothing this pass could do: whoever holds the remaining slots is busy
                        // with them. Sleep until a slot is freed or a count changes.
                        device.progress.wait(after: generation)
                    }
                }
                // An allocation that looked at the device before allocation stopped may still
                // be on its way in: wait for every one of them (kernel: `percpu_ref_kill`,
                // `wait_for_completion`). Then the device is empty for good, or one of them got
                // in before it saw allocation stopped and there is more to bring back.
                #if DEBUG
                // Relaxed: a test switch, set before the test's threads start.
                if engine.testHooks.swapOffSkipsUsersWait.load(ordering: .relaxed) { break }
                #endif
                device.users.kill()
                if device.usedPages == 0 { break }
                device.users.revive()
            }
        } catch {
            device.writeOK.store(true, ordering: .releasing)
            throw error
        }
        engine.devices.remove(device)
        // No pass can start on the device any more (its references are dead): forget a queued
        // one and wait for one still finishing (kernel: `flush_work(&si->reclaim_work)`).
        slotReclaimer?.forget(device)
    }

    /// A page swapoff could not read.
    private struct UnreadPage {
        let region: Int
        let page: Int
        let entry: SwapEntry
        let error: SwapError
    }

    /// What one pass of `unuse` did.
    private struct UnusePass {
        /// Pages and cache-only folios taken off the device.
        var broughtBack = 0
        /// Pages whose read failed: still on the device.
        var unread: [UnreadPage] = []
    }

    /// The error of a swapoff that met read errors: names the pages (the first few).
    private static func unreadable(_ unread: [UnreadPage], device: SwapDevice) -> SwapError {
        let named = unread.prefix(8).map { "region \($0.region) page \($0.page) (\($0.entry))" }.joined(separator: ", ")
        let more = unread.count > 8 ? " and \(unread.count - 8) more" : ""
        return SwapError(
            .ioError,
            "swapoff of device \(device.type) could not read \(unread.count) pages: \(named)\(more) (\(unread[0].error.message)); they are still on the device, which stays in service: retry swapoff, or discard those pages first",
            errno: unread[0].error.errno)
    }

    /// Brings back every page on `device` that a region maps, then drops cached folios whose
    /// slots nobody maps (kernel: `try_to_unuse`). A page whose read fails is noted and
    /// skipped; other errors end the pass.
    private func unuse(_ device: SwapDevice) throws(SwapError) -> UnusePass {
        var pass = UnusePass()
        let frames = engine.frames
        let regions = engine.reverseMap.all.compactMap { $0 as? Region }
        for region in regions {
            for page in 0..<region.pageCount {
                let pte = region.pte(page)
                guard pte.isSwap, pte.swapEntry.type == device.type else { continue }
                let pin: Pin
                do {
                    pin = try region.pin(page, for: .read)
                } catch  where error.code == .ioError {
                    pass.unread.append(UnreadPage(region: region.id, page: page, entry: pte.swapEntry, error: error))
                    continue
                }
                let f = pin.folio
                frames.lock(f)
                if frames.flags(f).contains(.swapcache) && frames.entry(f).type == device.type {
                    frames.waitWriteback(f)
                    engine.cache.freeSwapIfUnused(f)
                }
                frames.unlock(f)
                _ = consume pin
                pass.broughtBack += 1
            }
        }
        // Folios still cached on the device with no mapping left (cache-only slots).
        for offset in 1..<device.pageCount {
            let entry = SwapEntry(type: device.type, offset: offset)
            guard device.slot(entry).isFolio, let f = engine.cache.swapCacheGetFolio(entry) else { continue }
            frames.lock(f)
            if frames.matches(f, entry) {
                frames.waitWriteback(f)
                if engine.cache.freeSwapIfUnused(f) { pass.broughtBack += 1 }
            }
            frames.unlock(f)
            engine.allocator.putFolio(f)
        }
        return pass
    }
}
