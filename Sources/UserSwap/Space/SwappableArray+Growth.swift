/// Growing and shrinking: `append`, `append(contentsOf:)`, `removeLast`, `removeAll`,
/// `reserveCapacity`. Each takes the array's writer lock, so they are serialized with one
/// another but not with element reads and writes.
///
/// Costs: appending pins the last page (a swap-in if it was swapped out) and, once per segment,
/// makes a region twice the size of the one before (its page table: 8 bytes per page), so an
/// append is amortized O(1) and no element is ever copied. Removing releases the pages left
/// empty (their RAM and swap) at once; capacity stays.
extension SwappableArray {
    /// Appends `value`. Throws `.invalidArgument` beyond 16 TiB of pages, or the swap device's
    /// error (the array is then unchanged).
    public func append(_ value: Element) throws(SwapError) {
        try writer.withLock { (state: inout WriterState) throws(SwapError) in
            try writerReserve(&state, count: state.count + 1)
            let (page, slot) = state.count.quotientAndRemainder(dividingBy: elementsPerPage)
            let pin = try pin(page: page, for: .write)
            pin.bytes.storeBytes(of: value, toByteOffset: slot * MemoryLayout<Element>.stride, as: Element.self)
            state.count += 1
            writerPublish(&state)
        }
    }

    /// Appends the elements of `newElements`, a page at a time (one pin per page; a contiguous
    /// collection such as an `Array` is copied with one `memcpy` per page). Throws as
    /// `append(_:)`; the elements appended before an error stay.
    ///
    /// `newElements` is read while the array's writer lock is held: its iterator must not grow
    /// or shrink this array (reading it, as `a.append(contentsOf: a)` does, is fine).
    public func append(contentsOf newElements: some Sequence<Element>) throws(SwapError) {
        try writer.withLock { (state: inout WriterState) throws(SwapError) in
            let contiguous = newElements.withContiguousStorageIfAvailable { source in
                Result { () throws(SwapError) in try writerAppend(&state, contiguous: source) }
            }
            if let contiguous { return try contiguous.get() }
            try writerReserve(&state, count: state.count + newElements.underestimatedCount)
            var iterator = newElements.makeIterator()
            var next = iterator.next()
            while let first = next {
                try writerReserve(&state, count: state.count + 1)
                let (page, startSlot) = state.count.quotientAndRemainder(dividingBy: elementsPerPage)
                let pin = try pin(page: page, for: .write)
                let elements = pin.bytes.bindMemory(to: Element.self)
                var slot = startSlot
                elements[slot] = first
                slot += 1
                next = iterator.next()
                while slot < elementsPerPage, let value = next {
                    elements[slot] = value
                    slot += 1
                    next = iterator.next()
                }
                state.count += slot - startSlot
                writerPublish(&state)
            }
        }
    }

    /// Appends `source`'s elements a page at a time.
    private func writerAppend(_ state: inout WriterState, contiguous source: UnsafeBufferPointer<Element>) throws(SwapError) {
        try writerReserve(&state, count: state.count + source.count)
        var copied = 0
        while copied < source.count {
            let (page, slot) = state.count.quotientAndRemainder(dividingBy: elementsPerPage)
            let n = Swift.min(elementsPerPage - slot, source.count - copied)
            let pin = try pin(page: page, for: .write)
            let destination = pin.bytes.baseAddress! + slot * MemoryLayout<Element>.stride
            destination.copyMemory(from: source.baseAddress! + copied, byteCount: n * MemoryLayout<Element>.stride)
            copied += n
            state.count += n
            writerPublish(&state)
        }
    }

    /// Removes and returns the last element. Throws `.outOfRange` when the array is empty, or
    /// the swap device's error reading the element (the array is then unchanged).
    @discardableResult
    public func removeLast() throws(SwapError) -> Element {
        // Read into a local: `withLock` may only return what can be sent to another thread.
        var last: Element?
        try writer.withLock { (state: inout WriterState) throws(SwapError) in
            guard state.count > 0 else {
                throw SwapError(.outOfRange, "removeLast() on an empty SwappableArray; check isEmpty first")
            }
            let (page, slot) = (state.count - 1).quotientAndRemainder(dividingBy: elementsPerPage)
            let pin = try pin(page: page, for: .read)
            last = pin.bytes.load(fromByteOffset: slot * MemoryLayout<Element>.stride, as: Element.self)
            writerShrink(&state, to: state.count - 1)
        }
        guard let last else { fatalError("SwappableArray.removeLast() read nothing") }
        return last
    }

    /// Removes the last `k` elements. Throws `.invalidArgument` for a negative `k` and
    /// `.outOfRange` when the array has fewer than `k` elements.
    public func removeLast(_ k: Int) throws(SwapError) {
        try writer.withLock { (state: inout WriterState) throws(SwapError) in
            guard k >= 0 else {
                throw SwapError(.invalidArgument, "removeLast(\(k)): the number of elements to remove cannot be negative")
            }
            guard k <= state.count else {
                throw SwapError(.outOfRange, "removeLast(\(k)) on a SwappableArray of \(state.count) elements")
            }
            writerShrink(&state, to: state.count - k)
        }
    }

    /// Removes every element and releases every page; the capacity stays.
    public func removeAll() {
        writer.withLock { state in writerShrink(&state, to: 0) }
    }

    /// Makes room for `minimumCapacity` elements now, so that appending up to it makes no
    /// region. Throws `.invalidArgument` for a negative or too large capacity.
    public func reserveCapacity(_ minimumCapacity: Int) throws(SwapError) {
        guard minimumCapacity >= 0 else {
            throw SwapError(.invalidArgument, "reserveCapacity(\(minimumCapacity)): a capacity cannot be negative")
        }
        try writer.withLock { (state: inout WriterState) throws(SwapError) in
            try writerReserve(&state, count: minimumCapacity)
        }
    }

    /// Lowers the count to `newCount` and releases the pages no element uses any more (their
    /// frames and swap slots): a page half used keeps its data.
    private func writerShrink(_ state: inout WriterState, to newCount: Int) {
        assert(newCount <= state.count)
        let oldPages = (state.count + elementsPerPage - 1) / elementsPerPage
        let newPages = (newCount + elementsPerPage - 1) / elementsPerPage
        state.count = newCount
        // The count first: a reader that checked an index against the old count and pins an
        // emptied page afterwards gets a fresh page, never one that another array owns.
        writerPublish(&state)
        // Then the removal generation, before any page goes: a reader that read from a released
        // page sees the bump after its read and checks again (`readChecked(_:)`).
        // Sequentially consistent: ordered before the page releases that follow (the seqlock
        // writer's fence), not only after the count.
        removals.add(1, ordering: .sequentiallyConsistent)
        var page = newPages
        while page < oldPages {
            let (k, local) = layout.locate(page: page)
            let run = Swift.min(layout.pages(ofSegment: k) - local, oldPages - page)
            // In range by construction: the segment holds `local..<local + run`.
            do { try segment(k).discard(pages: local..<local + run) } catch {
                fatalError("SwappableArray: releasing pages \(local)..<\(local + run) of segment \(k): \(error)")
            }
            page += run
        }
    }
}
