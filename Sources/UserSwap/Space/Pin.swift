/// A page held in memory: while the pin lives, reclaim cannot move the page out, and `bytes`
/// stays valid. Dropping the pin marks the page referenced (recently used) for reclaim.
///
/// Non-copyable so that every pin is released exactly once. Must not outlive the region's use:
/// it keeps the region alive itself.
public struct Pin: ~Copyable {
    /// The page's 4 KiB.
    public let bytes: UnsafeMutableRawBufferPointer
    /// The page's index in its region.
    public let page: Int
    let region: Region
    let folio: Folio

    init(bytes: UnsafeMutableRawBufferPointer, page: Int, region: Region, folio: Folio) {
        self.bytes = bytes
        self.page = page
        self.region = region
        self.folio = folio
    }

    deinit {
        region.unpin(folio)
    }
}

/// How a pin will use the page: writing makes the page dirty (its copy on a device, if any, is
/// stale and its swap slot is released).
public enum PageAccess: Sendable {
    case read
    case write
}
