import Glibc
import Testing

@testable import UserSwap

@Suite("I/O request table")
struct IORequestTableTests {
    /// Resident pages of `bytes` from `start`, by `mincore` over the pages that hold them.
    static func residentPages(_ start: UnsafeRawPointer, bytes: Int) -> (resident: Int, pages: Int) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let first = Int(bitPattern: start) & ~(page - 1)
        let end = (Int(bitPattern: start) + bytes + page - 1) & ~(page - 1)
        let pages = (end - first) / page
        var vector = [UInt8](repeating: 0, count: pages)
        let result = mincore(UnsafeMutableRawPointer(bitPattern: first), end - first, &vector)
        precondition(result == 0, "mincore failed: errno \(errno)")
        return (vector.filter { $0 & 1 != 0 }.count, pages)
    }

    @Test("the iovecs of slots never used take no memory: a new table of 256 slots holds a few resident pages of its 1 MiB")
    func unusedSlotsAreNotResident() throws {
        let table = IORequestTable(count: 256)
        let bytes = 256 * IORequestTable.maxVectors * MemoryLayout<iovec>.stride
        let before = Self.residentPages(table.vectors(0), bytes: bytes)
        // One slot used, its iovecs written, as a submission writes them.
        let slot = try #require(table.acquire())
        defer { table.release(slot) }
        for i in 0..<IORequestTable.maxVectors { table.vectors(slot)[i] = iovec(iov_base: nil, iov_len: 4096) }
        let after = Self.residentPages(table.vectors(0), bytes: bytes)
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
