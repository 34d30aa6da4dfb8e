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
    public func withElements<E: Error>(
        in range: Range<Int>, _ body: (_ startIndex: Int, _ elements: UnsafeBufferPointer<Element>) throws(E) -> Void
    ) throws {
        try checkRange(range)
        let stopped = try forEachPage(in: range, for: .read) { (start, elements) throws(E) in
            try body(start, UnsafeBufferPointer(elements))
        }
        if let stopped { throw stopped }
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

        /// Copies the next page's elements into `page` under one pin; false at the end.
        @usableFromInline
        mutating func fetchPage() -> Bool {
            // Stop early rather than trap if the array shrank below the starting count.
            end = Swift.min(end, array.count)
            guard nextIndex < end else { return false }
            let pageEnd = Swift.min(end, (nextIndex / array.elementsPerPage + 1) * array.elementsPerPage)
            var copy = page
            page = []
            copy.removeAll(keepingCapacity: true)
            do {
                _ = try array.forEachPage(in: nextIndex..<pageEnd, for: .read) { _, elements in
                    copy.append(contentsOf: elements)
                }
            } catch {
                fatalError("SwappableArray iteration reading elements \(nextIndex)..<\(pageEnd): \(error)")
            }
            page = copy
            nextIndex = pageEnd
            position = 0
            return true
        }
    }
}
