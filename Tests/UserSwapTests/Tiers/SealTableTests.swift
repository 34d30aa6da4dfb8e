import Testing

@testable import UserSwap

@Suite("Seal table")
struct SealTableTests {
    @Test("a seal table costs only the pages of the records written, even where malloc would reuse a heap")
    func onlyWrittenRecordsAreResident() {
        let count = 100_000
        let bytes = count * MemoryLayout<SealRecord>.stride
        dirtyMallocHeap(past: bytes)
        let table = _SealTable(count: count)
        let before = residentPages(table.records, bytes: bytes)
        // One record in every 1,000: at most 100 pages of the table's 586.
        for page in stride(from: 0, to: count, by: 1000) {
            #expect(table[page].counter == 0 && table[page].tag == (0, 0))
            table[page] = SealRecord(counter: UInt64(page + 1), tag: (1, 2))
        }
        let after = residentPages(table.records, bytes: bytes)
        print("seal table: \(before.resident) of \(before.pages) pages resident when made, \(after.resident) after 100 records")
        #expect(before.pages >= 586)
        #expect(before.resident <= 1)
        #expect(after.resident <= 101)
        #expect(table[count - 1000].counter == UInt64(count - 999))
        #expect(table[1].counter == 0)
    }
}
