import Synchronization

/// Access from Swift concurrency: the `async` forms of the element calls, which suspend the
/// task instead of blocking its thread while a page is read (`Region.pin(_:for:)`, async).
/// Same results and errors as the blocking forms, plus `.cancelled` for a task cancelled while
/// it waited and `.pinLimit` past the space's `asyncPinLimit`.
extension SwappableArray {
    /// Reads element `i`, suspending while its page is read. Throws as `element(at:)`.
    public func element(at i: Int) async throws(SwapError) -> Element {
        try await readCheckedAsync { () async throws(SwapError) in
            try checkIndex(i)
            let (page, slot) = i.quotientAndRemainder(dividingBy: elementsPerPage)
            let pin = try await pin(page: page, for: .read)
            return pin.bytes.load(fromByteOffset: slot * MemoryLayout<Element>.stride, as: Element.self)
        }
    }

    /// Writes element `i`, suspending while its page is read. Throws as `setElement(_:at:)`.
    public func setElement(_ value: Element, at i: Int) async throws(SwapError) {
        try checkIndex(i)
        let (page, slot) = i.quotientAndRemainder(dividingBy: elementsPerPage)
        let pin = try await pin(page: page, for: .write)
        pin.bytes.storeBytes(of: value, toByteOffset: slot * MemoryLayout<Element>.stride, as: Element.self)
    }

    /// The elements at `indices`, in their order: their pages' reads are submitted together
    /// first (`prefetch(indices:)`, which does not wait), then each element is read, the task
    /// suspending on each page still in flight. Throws as `elements(at:)`.
    public func elements(at indices: some Collection<Int>) async throws(SwapError) -> [Element] {
        try prefetch(indices: indices)
        var result: [Element] = []
        result.reserveCapacity(indices.count)
        for i in indices { result.append(try await element(at: i)) }
        return result
    }

    /// Pins array page `page` (async); its segment must have been published.
    func pin(page: Int, for access: PageAccess) async throws(SwapError) -> Pin {
        let (k, local) = layout.locate(page: page)
        return try await segment(k).pin(local, for: access)
    }

    /// `readChecked(_:)` for an async read.
    func readCheckedAsync<T>(_ read: () async throws(SwapError) -> T) async throws(SwapError) -> T {
        while true {
            // As in `readChecked`: the bump of a removal between the loads sends us round.
            let before = removals.load(ordering: .acquiring)
            let value = try await read()
            atomicMemoryFence(ordering: .acquiring)
            // Relaxed: the fence orders it after the reads.
            if removals.load(ordering: .relaxed) == before { return value }
        }
    }
}
