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
    /// Fails with `.outOfMemory` when RAM and the other devices cannot hold the data; the device
    /// then stays in service and nothing is lost.
    public func swapOff(_ device: SwapDevice) throws(SwapError) {
        guard engine.devices.devices.contains(where: { $0 === device }) else {
            throw SwapError(.invalidArgument, "swap device \(device.type) is not in this space")
        }
        device.writeOK.store(false, ordering: .releasing)
        do throws(SwapError) {
            var rounds = 0
            while true {
                while device.usedPages > 0 {
                    // New entries on the device may have been handed out just before allocation
                    // stopped; a few rounds catch them.
                    rounds += 1
                    guard rounds <= 16 else {
                        throw SwapError(.ioError, "swapoff of device \(device.type) could not empty it: \(device.usedPages) slots still in use")
                    }
                    yieldPoint(.swapOffBeforeUnuse)
                    try unuse(device)
                }
                // An allocation that looked at the device before allocation stopped may still
                // be on its way in: wait for every one of them (kernel: `percpu_ref_kill`,
                // `wait_for_completion`). Then the device is empty for good, or one of them got
                // in before it saw allocation stopped and there is more to bring back.
                device.users.kill()
                if device.usedPages == 0 { break }
                device.users.revive()
            }
        } catch {
            device.writeOK.store(true, ordering: .releasing)
            throw error
        }
        engine.devices.remove(device)
    }

    /// Brings back every page on `device` that a region maps, then drops cached folios whose
    /// slots nobody maps (kernel: `try_to_unuse`).
    private func unuse(_ device: SwapDevice) throws(SwapError) {
        let frames = engine.frames
        let regions = engine.regions.withLock { $0.values.compactMap(\.region) }
        for region in regions {
            for page in 0..<region.pageCount {
                let pte = region.pte(page)
                guard pte.isSwap, pte.swapEntry.type == device.type else { continue }
                let pin = try region.pin(page, for: .read)
                let f = pin.folio
                frames.lock(f)
                if frames.flags(f).contains(.swapcache) && frames.entry(f).type == device.type {
                    frames.waitWriteback(f)
                    engine.freeSwapIfUnused(f)
                }
                frames.unlock(f)
                _ = consume pin
            }
        }
        // Folios still cached on the device with no mapping left (cache-only slots).
        for offset in 1..<device.pageCount {
            let entry = SwapEntry(type: device.type, offset: offset)
            guard device.slot(entry).isFolio, let f = engine.swapCacheGetFolio(entry) else { continue }
            frames.lock(f)
            if frames.matches(f, entry) {
                frames.waitWriteback(f)
                engine.freeSwapIfUnused(f)
            }
            frames.unlock(f)
            engine.putFolio(f)
        }
    }
}
