import Synchronization

/// Page-wise access: each page's elements as one buffer under one pin, for bulk reads, bulk
/// writes and iteration. A page pinned once serves all its elements (up to 4096 / stride), where
/// the subscript pins it again for each.
extension SwappableArray {
    /// Calls `body` once for each page that `range` touches, in order, with the index of the
    /// first element handed over and that page's elements of `range` as a buffer. The page stays
    /// pinned (in memory) while `body` runs; the buffer is valid only inside `body`.
    ///
    /// Throws `SwapError` (`.outOfRange` for a range outside `0..<count`, or the swap device's
    /// error), or whatever `body` throws; either stops the walk.
    ///
    /// Removing elements of `range` while `body` reads them in place is a race `body` cannot
    /// be protected from: it may see zeros where they were. When that happens (a removal ran
    /// during the walk and `range` now reaches past the count), `withElements` throws
    /// `.outOfRange` after the walk, so that what `body` gathered is not taken as the array's.
    /// `elements(in:)` copies instead and never returns such zeros.
    public func withElements<E: Error>(
        in range: Range<Int>, _ body: (_ startIndex: Int, _ elements: UnsafeBufferPointer<Element>) throws(E) -> Void
    ) throws {
        // Acquiring: pairs with the bump in `writerShrink` (see `removals`).
        let before = removals.load(ordering: .acquiring)
        try checkRange(range)
        let stopped = try forEachPage(in: range, for: .read) { (start, elements) throws(E) in
            try body(start, UnsafeBufferPointer(elements))
        }
        if let stopped { throw stopped }
        // The reads above are ordered before the second load (the seqlock reader's fence).
        atomicMemoryFence(ordering: .acquiring)
        // Relaxed: the fence orders it after the reads.
        if removals.load(ordering: .relaxed) != before, range.upperBound > count {
            throw SwapError(
                .outOfRange,
                "elements of \(range) were removed while withElements read them (the SwappableArray has \(count) now); what the closure saw of them may be zeros"
            )
        }
    }

    /// `withElements(in:_:)` for writing: the buffer's elements are the array's, and the pages
    /// handed over are marked dirty (their copies on swap, if any, are released).
    public func withMutableElements<E: Error>(
        in range: Range<Int>, _ body: (_ startIndex: Int, _ elements: UnsafeMutableBufferPointer<Element>) throws(E) -> Void
    ) throws {
        try checkRange(range)
        if let stopped = try forEachPage(in: range, for: .write, body) { throw stopped }
    }

    /// Walks `range` a page at a time; the caller checked the range. Throws the swap device's
    /// error; returns the error `body` threw, which stopped the walk, or nil.
    func forEachPage<E: Error>(
        in range: Range<Int>, for access: PageAccess, _ body: (Int, UnsafeMutableBufferPointer<Element>) throws(E) -> Void
    ) throws(SwapError) -> E? {
        var start = range.lowerBound
        while start < range.upperBound {
            let (page, slot) = start.quotientAndRemainder(dividingBy: elementsPerPage)
            let n = Swift.min(elementsPerPage - slot, range.upperBound - start)
            let pin = try pin(page: page, for: access)
            // The page is pinned until `pin` goes away after `body`; its first byte is 4 KiB
            // aligned and each element starts at a multiple of its stride, so every element is
            // aligned.
            let elements = pin.bytes.bindMemory(to: Element.self)
            do { try body(start, UnsafeMutableBufferPointer(rebasing: elements[slot..<slot + n])) } catch { return error }
            start += n
        }
        return nil
    }

    /// Iterates page by page: the iterator copies a page's elements out under one pin, then
    /// hands them out one by one.
    @inlinable
    public func makeIterator() -> Iterator { Iterator(array: self) }

    /// Iterates the elements below the count at its start (fewer, if another thread removes
    /// elements meanwhile), a page at a time. A swap-device failure traps; use
    /// `withElements(in:_:)` to handle it.
    ///
    /// `next()` is inlinable so that a client's loop over the current page is specialized for
    /// its element type (15 ns per element otherwise, unspecialized across the module boundary);
    /// fetching the next page is not.
    public struct Iterator: IteratorProtocol {
        @usableFromInline let array: SwappableArray
        /// The index of the first element not yet copied into `page`.
        @usableFromInline var nextIndex = 0
        @usableFromInline var end: Int
        /// The current page's elements from `position` on are still to be handed out.
        @usableFromInline var page: [Element] = []
        @usableFromInline var position = 0

        @usableFromInline
        init(array: SwappableArray) {
            self.array = array
            end = array.count
            page.reserveCapacity(Swift.min(end, array.elementsPerPage))
        }

        @inlinable
        public mutating func next() -> Element? {
            if position == page.count {
                guard fetchPage() else { return nil }
            }
            defer { position += 1 }
            return page[position]
        }

        /// Copies the next page's elements into `page` under one pin; false at the end. The
        /// copy is checked against the count as `element(at:)` is (`readChecked(_:)`): a removal
        /// racing it shortens the iteration, never hands out zeros.
        @usableFromInline
        mutating func fetchPage() -> Bool {
            let (array, start, oldEnd) = (self.array, nextIndex, end)
            var copy = page
            page = []
            var newEnd = oldEnd
            do {
                newEnd = try array.readChecked { () throws(SwapError) -> Int in
                    copy.removeAll(keepingCapacity: true)
                    // Stop early rather than trap if the array shrank below the starting count.
                    let end = Swift.min(oldEnd, array.count)
                    guard start < end else { return end }
                    let pageEnd = Swift.min(end, (start / array.elementsPerPage + 1) * array.elementsPerPage)
                    _ = try array.forEachPage(in: start..<pageEnd, for: .read) { _, elements in
                        copy.append(contentsOf: elements)
                    }
                    return end
                }
            } catch {
                fatalError("SwappableArray iteration reading elements from \(start): \(error)")
            }
            end = newEnd
            page = copy
            nextIndex = start + copy.count
            position = 0
            return !copy.isEmpty
        }
    }
}
