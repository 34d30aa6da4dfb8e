import Testing

@testable import UserSwap

@Suite("Swap table slot encoding")
struct SwapTableSlotTests {
    @Test("a free slot is the all-zero word and nothing else is", arguments: [0, 1, SwapTableSlot.maxCount])
    func freeIsZero(count: Int) {
        #expect(SwapTableSlot.empty.isFree)
        #expect(SwapTableSlot.counted(count).isFree == (count == 0))
        #expect(!SwapTableSlot.bad.isFree)
        #expect(!SwapTableSlot.folio(0).isFree, "a folio at frame 0 with count 0 still holds the slot")
    }

    @Test(
        "folio frame and count round-trip at their limits",
        arguments: [UInt32(0), 1, 0x7fff_ffff, .max], [0, 1, 62, SwapTableSlot.maxCount])
    func folioRoundTrip(frame: UInt32, count: Int) {
        let s = SwapTableSlot.folio(frame, count: count)
        #expect(s.tag == .folio)
        #expect(s.isFolio && !s.isShadow && !s.isBad)
        #expect(s.frame == frame)
        #expect(s.count == count)
        #expect(!s.hasCache && !s.isZeroFilled)
    }

    @Test(
        "shadow payload and count round-trip at their limits",
        arguments: [UInt64(0), 1, 12345, SwapTableSlot.maxPayload], [1, SwapTableSlot.maxCount])
    func shadowRoundTrip(value: UInt64, count: Int) {
        let s = SwapTableSlot.shadow(value, count: count)
        #expect(s.tag == .shadow)
        #expect(s.payload == value)
        #expect(s.count == count)
    }

    @Test("changing the count keeps content and flags")
    func withCountKeepsTheRest() {
        let s = SwapTableSlot.shadow(SwapTableSlot.maxPayload, count: 5).withHasCache(true).withZeroFilled(true)
        for c in [0, 1, 30, SwapTableSlot.maxCount] {
            let t = s.withCount(c)
            #expect(t.count == c)
            #expect(t.payload == SwapTableSlot.maxPayload && t.isShadow && t.hasCache && t.isZeroFilled)
        }
    }

    @Test("replacing content keeps the count and flags")
    func replacingContent() {
        let s = SwapTableSlot.shadow(99, count: 3).withHasCache(true)
        let f = s.replacingContent(with: .folio(7))
        #expect(f.isFolio && f.frame == 7 && f.count == 3 && f.hasCache)
        let back = f.replacingContent(with: .shadow(5, count: 0))
        #expect(back.isShadow && back.payload == 5 && back.count == 3)
        let cleared = back.replacingContent(with: .empty)
        #expect(cleared.tag == .none && cleared.count == 3 && !cleared.isFree)
    }

    @Test("the charged flag survives content and count changes")
    func charged() {
        let s = SwapTableSlot.folio(9, count: 2).withSwapCharged(true)
        #expect(s.isSwapCharged && s.frame == 9)
        #expect(s.replacingContent(with: .shadow(SwapTableSlot.maxPayload, count: 0)).isSwapCharged)
        #expect(s.withCount(0).isSwapCharged && !s.withSwapCharged(false).isSwapCharged)
    }

    @Test("the has-cache and zero flags toggle independently")
    func flags() {
        let s = SwapTableSlot.counted(1)
        #expect(s.withHasCache(true).hasCache)
        #expect(!s.withHasCache(true).withHasCache(false).hasCache)
        #expect(s.withZeroFilled(true).isZeroFilled && !s.withZeroFilled(true).hasCache)
        #expect(SwapTableSlot.counted(0).withHasCache(true).isFree == false)
    }

    @Test("the bad marker is neither folio nor shadow and has no count")
    func bad() {
        #expect(SwapTableSlot.bad.isBad && SwapTableSlot.bad.count == 0)
        #expect(!SwapTableSlot.bad.isFolio && !SwapTableSlot.bad.isShadow)
    }
}

@Suite("Swap entries")
struct SwapEntryTests {
    @Test(
        "type and offset round-trip at their limits",
        arguments: [0, 1, SwapEntry.maxDevices - 1], [0, 1, 511, 512, 1 << 40, Int(SwapEntry.offsetMask)])
    func roundTrip(type: Int, offset: Int) {
        let e = SwapEntry(type: type, offset: offset)
        #expect(e.type == type && e.offset == offset)
        #expect(SwapEntry(raw: e.raw) == e)
    }

    @Test("cluster index and slot in cluster split the offset")
    func clusterSplit() {
        let e = SwapEntry(type: 3, offset: 5 * 512 + 17)
        #expect(e.clusterIndex == 5 && e.slotInCluster == 17)
        #expect(e.alignedDown(order: 4).offset == 5 * 512 + 16)
        #expect(e.advanced(by: 495).clusterIndex == 6)
    }
}
