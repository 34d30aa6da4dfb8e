/// Batched access: the pages of many elements read from the device together instead of one
/// after another (`Region.prefetch(pages:)` under element indices).
extension SwappableArray {
    /// Starts bringing the pages of the elements at `indices` into memory, and returns without
    /// waiting (in the spirit of `MADV_WILLNEED`): their reads go to the device together, and a
    /// later access to one of the elements waits only for its own page's read, if that is
    /// still in flight. Indices may come in any order, with duplicates. Returns the pages it
    /// started to read (pages in memory or never written need none).
    ///
    /// Throws `.outOfRange`, before reading anything, for an index outside `0..<count`; a
    /// failed read surfaces as the swap device's error on the access that needs the page.
    @discardableResult
    public func prefetch(indices: some Sequence<Int>) throws(SwapError) -> Int {
        // The pages of each segment (a region of its own), each segment's in one batch.
        var pages: [[Int]] = []
        for i in indices {
            try checkIndex(i)
            let (k, local) = layout.locate(page: i / elementsPerPage)
            while pages.count <= k { pages.append([]) }
            pages[k].append(local)
        }
        var started = 0
        for (k, segmentPages) in pages.enumerated() where !segmentPages.isEmpty {
            started += try segment(k).prefetch(pages: segmentPages)
        }
        return started
    }

    /// The elements at `indices`, in their order: their pages are prefetched together first
    /// (`prefetch(indices:)`), then each element is read. Throws `.outOfRange` for an index
    /// outside `0..<count`, or the swap device's error.
    public func elements(at indices: some Collection<Int>) throws(SwapError) -> [Element] {
        try prefetch(indices: indices)
        var result: [Element] = []
        result.reserveCapacity(indices.count)
        for i in indices { result.append(try element(at: i)) }
        return result
    }
}
