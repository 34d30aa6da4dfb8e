import Testing

@testable import UserSwap

@Suite("Frame table")
struct FrameTableTests {
    @Test("a frame costs 36 bytes of table, resident only once the frame is used")
    func bytesPerFrame() {
        #expect(FrameTable.bytesPerFrame == 36)
        let count = 1 << 16
        let frames = FrameTable(frameCount: count)
        let made = residentPages(frames.storage.base, bytes: frames.storage.byteCount)
        // Every field of every frame written: flags, reference count, entry, meta, owner,
        // placement, use count.
        for frame in 0..<UInt32(count) {
            let f = Folio(frame: frame)
            frames.initializeMeta(f, order: 0, group: 1)
            frames.initializeRefcount(f, 1)
            frames.setFlags(f, .uptodate)
            frames.setEntry(f, SwapEntry(type: 1, offset: Int(frame) + 1))
            frames.setOwner(f, ReverseMapKey(region: 1, page: Int(frame)))
            frames.setPlacement(f, FramePlacement(raw: UInt64(2) << 32 | UInt64(frame)))
            frames.setUses(f, UseCount(count: 3, epoch: 1))
        }
        let used = residentPages(frames.storage.base, bytes: frames.storage.byteCount)
        print(
            "frame table of \(count) frames: \(made.resident) of \(made.pages) pages resident when made, \(used.resident) once all are used"
        )
        #expect(made.pages == count * 36 / 4096)
        #expect(made.resident <= 1)
        #expect(used.resident == used.pages)
        let last = Folio(frame: UInt32(count - 1))
        #expect(frames.entry(last).offset == count && frames.owner(last).page == count - 1 && frames.placement(last).page == count - 1)
        #expect(frames.refcount(last) == 1 && frames.group(last) == 1 && frames.uses(last).count(at: 1) == 3)
    }

    @Test("every frame of a folio leads to its head, at every order, and keeps its order and group")
    func headOrderAndGroup() {
        let frames = FrameTable(frameCount: 2048)
        // Before any allocation every frame is a folio of its own, in group 0.
        for frame: UInt32 in [0, 1, 5, 2047] {
            #expect(frames.folio(containing: frame) == Folio(frame: frame))
            #expect(frames.order(Folio(frame: frame)) == 0 && frames.group(Folio(frame: frame)) == 0)
        }
        let lastGroup = MemoryGroupTable.capacity - 1
        for order in 0...SwapCluster.maxOrder {
            let head = Folio(frame: UInt32(1024 - (1 << order) * (order % 2)))
            frames.initializeMeta(head, order: order, group: lastGroup - order)
            for i in 0..<(1 << order) {
                let f = frames.folio(containing: head.frame + UInt32(i))
                #expect(f == head, "frame \(head.frame + UInt32(i)) of \(head), order \(order)")
            }
            #expect(frames.order(head) == order && frames.pageCount(head) == 1 << order)
            #expect(frames.group(head) == lastGroup - order)
            #expect(frames.placement(head) == .arena)
        }
    }

    @Test("a split leaves every page its own folio in the folio's group")
    func split() {
        let frames = FrameTable(frameCount: 1024)
        let f = Folio(frame: 512)
        frames.initializeMeta(f, order: 9, group: 7)
        for i in 0..<512 { frames.initializeMeta(Folio(frame: 512 + UInt32(i)), order: 0, group: 7) }
        for frame: UInt32 in [512, 513, 700, 1023] {
            #expect(frames.folio(containing: frame) == Folio(frame: frame))
            #expect(frames.order(Folio(frame: frame)) == 0 && frames.group(Folio(frame: frame)) == 7)
        }
    }

    @Test("a window placement reads back whole, at the limits of slot and page, and leaves order and group alone")
    func placement() {
        let frames = FrameTable(frameCount: 64)
        let f = Folio(frame: 9)
        let lastGroup = MemoryGroupTable.capacity - 1
        frames.initializeMeta(f, order: 0, group: lastGroup)
        let lastSlot = UInt64(FrameWindowTable.capacity)  // slot + 1 of the last slot
        for raw in [UInt64(1) << 32, lastSlot << 32 | 0xffff_ffff, UInt64(77) << 32 | 123_456] {
            let placement = FramePlacement(raw: raw)
            frames.setPlacement(f, placement)
            #expect(frames.placement(f) == placement, "placement \(raw)")
            #expect(frames.placement(f).windowSlot == placement.windowSlot && frames.placement(f).page == placement.page)
            #expect(frames.group(f) == lastGroup && frames.order(f) == 0 && frames.folio(containing: 9) == f)
            // Its neighbours are not placed.
            #expect(frames.placement(Folio(frame: 8)) == .arena && frames.placement(Folio(frame: 10)) == .arena)
        }
        frames.setPlacement(f, .arena)
        #expect(frames.placement(f) == .arena && frames.placement(f).isArena)
        #expect(frames.group(f) == lastGroup && frames.order(f) == 0)
    }
}
