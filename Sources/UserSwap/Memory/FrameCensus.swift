/// Where the frames of the RAM budget are, for an out-of-memory report (kernel: `show_free_areas`,
/// which the OOM killer's `dump_header` prints): free, on each group's LRU lists, and the frames
/// of folios on no list by what keeps them there — writeback, a swap-in not read yet
/// (`FolioFlags.arriving`), the folio lock, references beyond the folio's mappings and the swap
/// cache (pins, a reclaimer's isolation, a fault between allocating and listing the folio), or
/// none of these (a leak). Also the frames of folios that hold such extra references wherever
/// they are: what pins and transient users keep from reclaim.
///
/// Taken without stopping anyone: the figures may each be a moment apart, and a folio being
/// allocated, freed or split (no reference, or a half-written frame table entry) counts as
/// "in transition". Costs one pass over the frame table: for failure paths only.
struct FrameCensus: Sendable, CustomStringConvertible {
    var frames = 0
    var free = 0
    /// Pages on the inactive and active lists, per group with any (id order).
    var lists: [(group: String, inactive: Int, active: Int)] = []
    /// Frames of listed folios (the walk's figure; `lists` are the lists' own counts).
    var listed = 0
    /// Frames of folios on no list, by the first of these that applies.
    var writeback = 0
    var arriving = 0
    var locked = 0
    var referenced = 0
    var unaccounted = 0
    /// Frames neither free nor in a folio the walk found live.
    var inTransition = 0
    /// Folios isolated by reclaimers (the groups' `LRUVec.isolated` counts).
    var isolatedFolios = 0
    /// Folios with references beyond their mappings and the swap cache, their frames and those
    /// references (pins, isolation, lookups in progress).
    var heldFolios = 0
    var heldFrames = 0
    var extraReferences = 0

    var description: String {
        let lru = lists.map { "\($0.group) \($0.inactive)+\($0.active)" }.joined(separator: ", ")
        return "\(frames) frames: \(free) free, \(listed) on LRU lists (inactive+active: \(lru.isEmpty ? "none" : lru)); "
            + "off the lists \(writeback) under writeback, \(arriving) arriving, \(locked) locked, "
            + "\(referenced) held by references only, \(unaccounted) none of these; \(inTransition) in transition; "
            + "\(isolatedFolios) folios isolated by reclaim; \(heldFrames) frames in \(heldFolios) folios with "
            + "\(extraReferences) references beyond their mappings and the cache (pins, isolation)"
    }
}

extension FrameAllocator {
    /// Counts where the budget's frames are (see `FrameCensus`). One pass over the frame table.
    func census() -> FrameCensus {
        var c = FrameCensus()
        c.frames = frames.frameCount
        c.free = pool.freeFrames
        var live = 0
        var frame: UInt32 = 0
        while Int(frame) < frames.frameCount {
            let f = frames.folio(containing: frame)
            let refs = frames.refcount(f)
            // A free frame may still name an old head; a head being split or freed has no
            // reference: step by one frame then.
            guard f.frame == frame, refs > 0 else {
                frame += 1
                continue
            }
            let nr = min(frames.pageCount(f), frames.frameCount - Int(frame))
            frame += UInt32(nr)
            live += nr
            let flags = frames.flags(f)
            // References a mapped, cached folio holds by itself: one per page mapped (all of
            // them, as far as the walk can tell) and `nr` for the cache.
            let expected = (frames.owner(f).isNone ? 0 : nr) + (flags.contains(.swapcache) ? nr : 0)
            if refs > expected {
                c.heldFolios += 1
                c.heldFrames += nr
                c.extraReferences += refs - expected
            }
            if flags.contains(.lru) {
                c.listed += nr
            } else if flags.contains(.writeback) {
                c.writeback += nr
            } else if flags.contains(.arriving) {
                c.arriving += nr
            } else if flags.contains(.locked) {
                c.locked += nr
            } else if refs > expected {
                c.referenced += nr
            } else {
                c.unaccounted += nr
            }
        }
        c.inTransition = max(0, c.frames - c.free - live)
        for g in groups.list {
            let inactive = g.lru.pages(.inactive), active = g.lru.pages(.active)
            // Relaxed: a hint, like every figure here.
            c.isolatedFolios += g.lru.isolated.load(ordering: .relaxed)
            if inactive + active > 0 { c.lists.append((g.name, inactive, active)) }
        }
        return c
    }
}
