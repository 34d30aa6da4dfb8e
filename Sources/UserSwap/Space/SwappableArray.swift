import Synchronization

/// An array of plain values whose storage is swappable memory: elements live in RAM while hot
/// and on a swap device when the space's memory is short.
///
/// ```swift
/// let space = try SwapSpace(.init(memory: 64 << 20, devices: [.memory(bytes: 1 << 30)]))
/// let records = try SwappableArray<Record>(count: 1_000_000, in: space)
/// records[7] = Record(id: 7)                  // traps on an I/O error of the swap device
/// try records.setElement(Record(id: 8), at: 8) // throws it instead
/// try records.append(Record(id: 1_000_000))
/// for record in records { … }                 // one pin per page, not per element
/// ```
///
/// It is a class: copies share the elements (a swapped-out copy would have to be read back to
/// be copied). It is `Sendable` when `Element` is: threads may read and write elements and grow
/// or shrink it concurrently. Two threads writing the same element at once race on its bytes,
/// as they would through any shared buffer.
///
/// Each access pins the element's page for its duration; `withElements(in:_:)`, iteration and
/// `append(contentsOf:)` pin each page once for all its elements. Elements never straddle
/// pages: a page holds `elementsPerPage` (4096 / stride) of them. Its storage grows by segments
/// (see `SwappableArrayLayout`): no element ever moves, and capacity never shrinks; removing
/// elements releases the memory and swap of the pages left empty.
///
/// What throws and what traps: every operation that takes a count, an index or a range from
/// the caller and can throw rejects a bad one with a `SwapError`; so do swap-device failures.
/// The subscript and iteration cannot throw: they trap, with a message, on an index out of
/// range (as `Array` does) and on a swap-device failure.
public final class SwappableArray<Element: BitwiseCopyable>: RandomAccessCollection, MutableCollection {
    /// Elements per 4 KiB page.
    public let elementsPerPage: Int
    /// Makes the regions of new segments.
    let space: SwapSpace
    let group: MemoryGroup?
    let folioSize: Int
    let layout: SwappableArrayLayout
    /// The segments' regions, retained from their creation to `deinit`. Slot k is written once,
    /// under `writer`, and published (releasing) before any count that reaches into it.
    private let segments: InlineArray<64, Atomic<Unmanaged<Region>?>>
    /// The element count readers see: stored (releasing) under `writer` after the elements
    /// below it are written, loaded (acquiring) by readers without the lock.
    let publishedCount: Atomic<Int>
    /// Removals so far: bumped (releasing) by a removal after it publishes the smaller count and
    /// before it releases the emptied pages. A reader loads it (acquiring) before checking an
    /// index against the count and again after reading: unchanged, the element it read was
    /// below the count all along; changed, a removal may have released the page under it (a
    /// released page reads as zeros), so the reader checks the index again (see
    /// `readChecked(_:)`).
    let removals = Atomic<Int>(0)
    #if DEBUG
    /// Runs in `element(at:)` between the index check and the read: a test removes the element
    /// there, in the race window.
    let afterIndexCheck = TestHook()
    #endif
    /// Serializes what changes the count or the segments (append, remove, reserve); element reads
    /// and writes do not take it. Held across pinning a page (which may swap it in) and making
    /// a region: only other writers of this array ever wait for it, and they must wait for the
    /// count anyway; the engine and reclaim never take it.
    let writer: Mutex<WriterState>

    /// What only a writer changes, behind `writer`.
    struct WriterState: ~Copyable {
        var count: Int
        var segmentCount: Int
    }

    /// An array of `count` elements, all zero bits, in `space`; its pages are charged to `group`
    /// (the root group when nil) and handled in folios of `folioSize` bytes (see
    /// `SwapSpace.makeRegion(bytes:group:folioSize:)`).
    ///
    /// Throws `.invalidArgument` for a negative count, a count beyond 16 TiB of pages, or an
    /// element type a page cannot hold.
    public init(
        count: Int, in space: SwapSpace, group: MemoryGroup? = nil,
        folioSize: Int = SwapPage.size
    ) throws(SwapError) {
        let stride = MemoryLayout<Element>.stride
        guard stride > 0, stride <= SwapPage.size, MemoryLayout<Element>.alignment <= SwapPage.size else {
            throw SwapError(.invalidArgument, "a SwappableArray element must take 1 to 4096 bytes; \(Element.self) takes \(stride)")
        }
        let perPage = SwapPage.size / stride
        guard count >= 0 else {
            throw SwapError(.invalidArgument, "a SwappableArray cannot have \(count) elements; give a count of 0 or more")
        }
        try Self.checkCapacity(count, perPage: perPage)
        elementsPerPage = perPage
        self.space = space
        self.group = group
        self.folioSize = folioSize
        layout = SwappableArrayLayout(firstPages: Swift.max(1, (count + perPage - 1) / perPage))
        let first = try space.makeRegion(bytes: layout.firstPages * SwapPage.size, group: group, folioSize: folioSize)
        segments = InlineArray { k in Atomic(k == 0 ? Unmanaged.passRetained(first) : nil) }
        publishedCount = Atomic(count)
        writer = Mutex(WriterState(count: count, segmentCount: 1), rank: .swappableArrayWriter)
    }

    /// An array of `count` copies of `value` in `space` (see `init(count:in:group:folioSize:)`).
    public convenience init(
        repeating value: Element, count: Int, in space: SwapSpace,
        group: MemoryGroup? = nil, folioSize: Int = SwapPage.size
    ) throws(SwapError) {
        try self.init(count: count, in: space, group: group, folioSize: folioSize)
        _ = try forEachPage(in: 0..<count, for: .write) { _, elements in elements.update(repeating: value) }
    }

    deinit {
        for k in 0..<SwappableArrayLayout.maxSegments {
            segments[k].load(ordering: .acquiring)?.release()
        }
    }

    /// Elements now. Another thread may change it at any time: an index below it stays valid
    /// only as long as no thread removes elements.
    public var count: Int { publishedCount.load(ordering: .acquiring) }

    /// Elements the array holds without making another segment.
    public var capacity: Int { layout.pagesBefore(segment: publishedSegmentCount) * elementsPerPage }

    /// The region of the pages the array was made with (elements `0..<region.pageCount *
    /// elementsPerPage`); elements appended beyond them live in further regions (`regions`).
    public var region: Region { segment(0) }

    /// The regions of the array's segments, in element order.
    public var regions: [Region] { (0..<publishedSegmentCount).map { segment($0) } }

    public var startIndex: Int { 0 }
    public var endIndex: Int { count }
    public var underestimatedCount: Int { count }

    /// Reads or writes one element. An index out of range, or an I/O error of the swap device,
    /// traps (use `element(at:)` and `setElement(_:at:)` to handle them).
    public subscript(i: Int) -> Element {
        get {
            do { return try element(at: i) } catch { fatalError("SwappableArray read of element \(i): \(error)") }
        }
        set {
            do { try setElement(newValue, at: i) } catch { fatalError("SwappableArray write of element \(i): \(error)") }
        }
    }

    /// Reads element `i`, or throws `.outOfRange` or the swap device's error.
    ///
    /// A read racing a removal (`removeLast`, `removeAll`) returns the element as it was or
    /// throws `.outOfRange`: the index is checked against the count under the same removal
    /// generation as the read (`removals`), so the zeros of a page a removal released are never
    /// returned as an element.
    public func element(at i: Int) throws(SwapError) -> Element {
        try readChecked { () throws(SwapError) in
            try checkIndex(i)
            #if DEBUG
            afterIndexCheck.run()
            #endif
            let (page, slot) = i.quotientAndRemainder(dividingBy: elementsPerPage)
            let pin = try pin(page: page, for: .read)
            return pin.bytes.load(fromByteOffset: slot * MemoryLayout<Element>.stride, as: Element.self)
        }
    }

    /// Runs `read` (which checks its indices against the count, then reads) until no removal
    /// ran during it, and returns what it read: then every element it read was below the count
    /// from its check to its read, so none came from a page a removal released.
    @inline(__always)
    func readChecked<T>(_ read: () throws(SwapError) -> T) throws(SwapError) -> T {
        while true {
            // Acquiring: pairs with the releasing bump in `writerShrink`; a reader that sees
            // the bump sees the smaller count published before it.
            let before = removals.load(ordering: .acquiring)
            let value = try read()
            // The reads above are ordered before the second load (the seqlock reader's fence).
            atomicMemoryFence(ordering: .acquiring)
            // Relaxed: the fence orders it after the reads.
            if removals.load(ordering: .relaxed) == before { return value }
        }
    }

    /// Writes element `i`, or throws `.outOfRange` or the swap device's error. A write racing
    /// the removal of element `i` may be lost with the element.
    public func setElement(_ value: Element, at i: Int) throws(SwapError) {
        try checkIndex(i)
        let (page, slot) = i.quotientAndRemainder(dividingBy: elementsPerPage)
        let pin = try pin(page: page, for: .write)
        pin.bytes.storeBytes(of: value, toByteOffset: slot * MemoryLayout<Element>.stride, as: Element.self)
    }

    /// Pins array page `page`. Its segment must have been published: the caller checked the
    /// page against a count or capacity it loaded.
    @inline(__always)
    func pin(page: Int, for access: PageAccess) throws(SwapError) -> Pin {
        let (k, local) = layout.locate(page: page)
        return try segment(k).pin(local, for: access)
    }

    /// Segments published so far (they are published in order). Without the lock: `capacity`
    /// must not wait for a writer's swap-in.
    private var publishedSegmentCount: Int {
        var k = 1
        // Acquiring: pairs with the releasing store that published the slot (see `segments`).
        while k < SwappableArrayLayout.maxSegments, segments[k].load(ordering: .acquiring) != nil { k += 1 }
        return k
    }

    /// The region of segment `k`, which must be published.
    @inline(__always)
    func segment(_ k: Int) -> Region {
        // Acquiring: pairs with the releasing store that published the slot (see `segments`).
        guard let region = segments[k].load(ordering: .acquiring) else {
            fatalError("SwappableArray segment \(k) used before it was made")
        }
        return region.takeUnretainedValue()
    }

    /// Makes segments until the array holds `count` elements. Throws `.invalidArgument` beyond
    /// 16 TiB, or the space's error when a region cannot be made.
    func writerReserve(_ state: inout WriterState, count: Int) throws(SwapError) {
        try Self.checkCapacity(count, perPage: elementsPerPage)
        let needed = layout.segments(holding: (count + elementsPerPage - 1) / elementsPerPage)
        while state.segmentCount < needed {
            let k = state.segmentCount
            // `checkCapacity` keeps the pages far below what the table's last segment reaches.
            guard k < SwappableArrayLayout.maxSegments else { fatalError("SwappableArray segment table overflow at \(count) elements") }
            let region = try space.makeRegion(
                bytes: layout.pages(ofSegment: k) * SwapPage.size, group: group,
                folioSize: folioSize)
            // Releasing: a reader that sees a count reaching into this segment sees the slot.
            segments[k].store(Unmanaged.passRetained(region), ordering: .releasing)
            state.segmentCount = k + 1
        }
    }

    /// Sets the count readers see to the writer's.
    func writerPublish(_ state: inout WriterState) {
        // Releasing: the elements written below the count are visible to whoever loads it.
        publishedCount.store(state.count, ordering: .releasing)
    }

    static func checkCapacity(_ count: Int, perPage: Int) throws(SwapError) {
        guard count <= SwappableArrayLayout.maxPages * perPage else {
            throw SwapError(
                .invalidArgument,
                "a SwappableArray holds at most \(SwappableArrayLayout.maxPages * perPage) elements of \(Element.self) (16 TiB of pages); \(count) is too many"
            )
        }
    }

    func checkIndex(_ i: Int) throws(SwapError) {
        let count = self.count
        guard i >= 0 && i < count else {
            throw SwapError(.outOfRange, "index \(i) is outside the SwappableArray's 0..<\(count)")
        }
    }

    func checkRange(_ range: Range<Int>) throws(SwapError) {
        let count = self.count
        guard range.lowerBound >= 0 && range.upperBound <= count else {
            throw SwapError(.outOfRange, "range \(range) is outside the SwappableArray's 0..<\(count)")
        }
    }
}

// Checked by the compiler: every stored property is a constant, an atomic or a mutex, and the
// elements are bytes in pages reached through pins, as in `Region` (also Sendable). Only an
// `Element` that may cross threads makes an array that may.
extension SwappableArray: Sendable where Element: Sendable {}
