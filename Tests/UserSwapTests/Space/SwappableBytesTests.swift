import Foundation
import Testing

@testable import UserSwap

/// Bulk copies in and out of a `SwappableArray`, and `SwappableBytes` as a blob store.
@Suite("SwappableBytes: blobs in swappable memory, copied a page at a time")
struct SwappableBytesTests {
    /// Bytes that differ at every offset of every blob, so that a misplaced page shows.
    static func blob(_ n: Int, _ count: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ n &* 7 &+ ($0 >> 8)) }
    }

    @Test("blobs appended as Array and Data come back byte for byte after swapping, across page boundaries")
    func blobsRoundTrip() throws {
        let (space, _) = try makeSpace(memoryPages: 8)
        let bytes = try SwappableBytes(count: 0, in: space)
        var ranges: [Range<Int>] = []
        for n in 0..<60 {
            let size = 1 + (n * 2_711) % 9_000  // from 1 byte to two pages and more
            let start = bytes.count
            if n % 2 == 0 {
                try bytes.append(contentsOf: Self.blob(n, size))
            } else {
                try bytes.append(contentsOf: Data(Self.blob(n, size)))
            }
            ranges.append(start..<bytes.count)
        }
        #expect(space.statistics[.swapOuts] > 0, "the blobs must leave memory for the test to mean anything")
        for (n, range) in ranges.enumerated().reversed() {
            #expect(try bytes.elements(in: range) == Self.blob(n, range.count), "blob \(n) as [UInt8]")
            #expect(try bytes.data(in: range) == Data(Self.blob(n, range.count)), "blob \(n) as Data")
        }
        #expect(space.statistics[.swapIns] > 0)
        #expect(try bytes.elements(in: 5..<5).isEmpty && bytes.data(in: 0..<0).isEmpty)
    }

    @Test("replaceElements overwrites in place from contiguous and other collections; the count stays")
    func replaceInPlace() throws {
        let (space, _) = try makeSpace(memoryPages: 4)
        let words = try SwappableArray<UInt64>(repeating: 0, count: 5_000, in: space)
        try words.replaceElements(from: 100, with: (0..<1_500).map { UInt64($0) &+ 7 })  // an Array
        try words.replaceElements(from: 3_000, with: (0..<700).lazy.map { UInt64($0) &* 3 })  // lazily mapped
        #expect(words.count == 5_000)
        let all = try words.elements(in: 0..<5_000)
        for i in 0..<5_000 {
            let expected: UInt64 =
                (100..<1_600).contains(i)
                ? UInt64(i - 100) &+ 7
                : (3_000..<3_700).contains(i) ? UInt64(i - 3_000) &* 3 : 0
            if all[i] != expected {
                Issue.record("element \(i) is \(all[i]), not \(expected)")
                break
            }
        }
    }

    @Test("ranges outside the array are typed errors, and nothing is written")
    func outOfRange() throws {
        let (space, _) = try makeSpace(memoryPages: 4)
        let bytes = try SwappableBytes(repeating: 9, count: 100, in: space)
        #expect(throws: SwapError.self) { try bytes.elements(in: 90..<101) }
        #expect(throws: SwapError.self) { try bytes.data(in: -1..<3) }
        let error = try #require(throws: SwapError.self) { try bytes.replaceElements(from: 95, with: [UInt8](repeating: 1, count: 6)) }
        #expect(error.code == .outOfRange)
        #expect(throws: SwapError.self) { try bytes.replaceElements(from: -2, with: [1, 2]) }
        #expect(try bytes.elements(in: 0..<100) == [UInt8](repeating: 9, count: 100))
    }
}
