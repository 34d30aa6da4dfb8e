/// A page held in memory: while the pin lives, reclaim cannot move the page out, and `bytes`
/// stays valid. Dropping the pin marks the page referenced (recently used) for reclaim.
///
/// Non-copyable so that every pin is released exactly once. The page stays valid while the pin
/// lives, even if its region is discarded or goes away meanwhile.
public struct Pin: ~Copyable {
    /// The page's 4 KiB.
    public let bytes: UnsafeMutableRawBufferPointer
    /// The page's index in its region.
    public let page: Int
    /// The engine, not the region: regions are weakly referenced by the reverse map, which makes
    /// their reference counting slow, and a pin only needs to drop its folio reference.
    let engine: SwapEngine
    let folio: Folio
    /// Taken through the `async` API: counted in the space's `AsyncPinBudget`.
    let counted: Bool

    init(bytes: UnsafeMutableRawBufferPointer, page: Int, engine: SwapEngine, folio: Folio, counted: Bool = false) {
        self.bytes = bytes
        self.page = page
        self.engine = engine
        self.folio = folio
        self.counted = counted
    }

    deinit {
        engine.allocator.putFolio(folio)
        if counted { engine.asyncPins.release() }
    }
}

/// How a pin will use the page: writing makes the page dirty (its copy on a device, if any, is
/// stale and its swap slot is released).
public enum PageAccess: Sendable {
    /// The pin only reads: a clean page keeps its copy on the device.
    case read
    /// The pin may write: the page becomes dirty.
    case write
}
