import Glibc
import Testing

@testable import UserSwap

@Suite("I/O request table")
struct IORequestTableTests {
    @Test("the iovecs of slots never used take no memory: a new table of 256 slots holds a few resident pages of its 1 MiB")
    func unusedSlotsAreNotResident() throws {
        let bytes = 256 * IORequestTable.maxVectors * MemoryLayout<iovec>.stride
        dirtyMallocHeap(past: bytes)
        let table = IORequestTable(count: 256)
        let before = residentPages(table.vectors(0), bytes: bytes)
        // One slot used, its iovecs written, as a submission writes them.
        let slot = try #require(table.acquire())
        defer { table.release(slot) }
        for i in 0..<IORequestTable.maxVectors { table.vectors(slot)[i] = iovec(iov_base: nil, iov_len: 4096) }
        let after = residentPages(table.vectors(0), bytes: bytes)
        print(
            "request table: \(before.resident) of \(before.pages) pages resident when made,",
            "\(after.resident) after one slot's iovecs were written")
        #expect(before.pages >= 256)
        #expect(before.resident <= 2)
        #expect(after.resident <= 4)
        #expect(table.vectors(slot)[IORequestTable.maxVectors - 1].iov_len == 4096)
        #expect(table.vectors(255)[0].iov_len == 0 && table.vectors(255)[0].iov_base == nil)
    }
}
