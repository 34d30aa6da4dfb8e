import Foundation
import Glibc
import Synchronization
import Testing

@testable import UserSwap

@Suite("File backend")
struct FileBackendTests {
    /// A formatted swap file of `pages` pages in a fresh directory, opened as a device. The
    /// directory goes when the value does: tests keep it alive to their end with
    /// `defer { withExtendedLifetime(device) {} }`.
    final class OpenedFile {
        let scratch: DeviceScratchDirectory
        let path: String
        let backend: FileBackend

        init(pages: Int = 1024, discard: Bool = false) throws {
            scratch = try DeviceScratchDirectory()
            path = scratch.file("swap")
            try SwapFile.format(path: path, bytes: Int64(pages * SwapPage.size))
            backend = try SwapFile.open(path: path, discard: discard).backend
        }
    }

    @Test("pages written come back byte for byte, and other pages stay zero")
    func singlePages() throws {
        let device = try OpenedFile()
        defer { withExtendedLifetime(device) {} }
        let backend = device.backend
        for page in [1, 2, 511, 512, 1023] {
            try DeviceTestSupport.pattern(page: page).withUnsafeBytes { try backend.write($0, atPage: page) }
        }
        var buffer = [UInt8](repeating: 0xEE, count: SwapPage.size)
        for page in [1, 2, 511, 512, 1023] {
            try buffer.withUnsafeMutableBytes { try backend.read(into: $0, atPage: page) }
            #expect(buffer == DeviceTestSupport.pattern(page: page), "page \(page)")
        }
        try buffer.withUnsafeMutableBytes { try backend.read(into: $0, atPage: 3) }
        #expect(buffer.allSatisfy { $0 == 0 })
        // Several pages in one call.
        let run = (10..<14).flatMap { DeviceTestSupport.pattern(page: $0, seed: 9) }
        try run.withUnsafeBytes { try backend.write($0, atPage: 10) }
        var back = [UInt8](repeating: 0, count: run.count)
        try back.withUnsafeMutableBytes { try backend.read(into: $0, atPage: 10) }
        #expect(back == run)
        #expect(backend.pageCount == 1024)
    }

    /// Writes `sizes` (in pages) as one vectored write at `page`, reads them back through a
    /// different split, and checks every byte.
    private func vectoredRoundTrip(_ backend: FileBackend, sizes: [Int], readSizes: [Int], at page: Int, seed: UInt8) throws {
        #expect(sizes.reduce(0, +) == readSizes.reduce(0, +))
        var next = page
        let sources: [UnsafeMutableRawBufferPointer] = sizes.map { count in
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: count * SwapPage.size, alignment: 64)
            for i in 0..<count {
                let bytes = DeviceTestSupport.pattern(page: next + i, seed: seed)
                buffer[(i * SwapPage.size)...].copyBytes(from: bytes)
            }
            next += count
            return buffer
        }
        let targets: [UnsafeMutableRawBufferPointer] = readSizes.map {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: $0 * SwapPage.size, alignment: 64)
            buffer.initializeMemory(as: UInt8.self, repeating: 0xEE)
            return buffer
        }
        defer { (sources + targets).forEach { $0.deallocate() } }

        let writeList = sources.map { UnsafeRawBufferPointer($0) }
        try writeList.withUnsafeBufferPointer { try backend.write($0, atPage: page) }
        try targets.withUnsafeBufferPointer { try backend.read(into: $0, atPage: page) }
        let written = sources.flatMap { Array($0) }
        let read = targets.flatMap { Array($0) }
        #expect(read == written, "vectored round trip of \(sizes) read as \(readSizes)")
    }

    @Test("vectored writes and reads round-trip byte for byte across different splits")
    func vectored() throws {
        let device = try OpenedFile()
        defer { withExtendedLifetime(device) {} }
        let backend = device.backend
        try vectoredRoundTrip(backend, sizes: [1, 3, 2], readSizes: [2, 1, 1, 2], at: 1, seed: 1)
        try vectoredRoundTrip(backend, sizes: [8], readSizes: [1, 1, 1, 1, 1, 1, 1, 1], at: 100, seed: 2)
        try vectoredRoundTrip(backend, sizes: [1, 0, 1], readSizes: [2], at: 1022, seed: 3)
    }

    @Test("a vectored transfer of more buffers than IOV_MAX is split and resumed exactly")
    func moreThanIOVMax() throws {
        let device = try OpenedFile(pages: 4096)
        defer { withExtendedLifetime(device) {} }
        let backend = device.backend
        let count = Syscalls.iovMax + 77
        #expect(count < 4095)
        try vectoredRoundTrip(
            backend, sizes: Array(repeating: 1, count: count),
            readSizes: [count / 2, count - count / 2], at: 2, seed: 4)
        try vectoredRoundTrip(
            backend, sizes: [count / 3, count - count / 3],
            readSizes: Array(repeating: 1, count: count), at: 3, seed: 5)
    }

    @Test("reading past the end of a truncated file is an I/O error, not zeros")
    func truncatedFile() throws {
        let device = try OpenedFile()
        defer { withExtendedLifetime(device) {} }
        let backend = device.backend
        let path = device.path
        try DeviceTestSupport.pattern(page: 5).withUnsafeBytes { try backend.write($0, atPage: 5) }
        #expect(truncate(path, 600 * 4096) == 0)

        var buffer = [UInt8](repeating: 0, count: SwapPage.size)
        let error = try #require(throws: SwapError.self) {
            try buffer.withUnsafeMutableBytes { try backend.read(into: $0, atPage: 700) }
        }
        #expect(error.code == .ioError)
        #expect(error.message.contains("truncated"), "\(error.message)")

        // A read that starts inside the file and runs past its end fails too.
        var run = [UInt8](repeating: 0, count: 4 * SwapPage.size)
        #expect(throws: SwapError(.ioError, "", errno: .ioError)) {
            try run.withUnsafeMutableBytes { try backend.read(into: $0, atPage: 598) }
        }
        // So does a vectored read whose last iovec crosses the end.
        let buffers = [
            UnsafeMutableRawBufferPointer.allocate(byteCount: SwapPage.size, alignment: 64),
            UnsafeMutableRawBufferPointer.allocate(byteCount: 2 * SwapPage.size, alignment: 64),
        ]
        defer { buffers.forEach { $0.deallocate() } }
        #expect(throws: SwapError(.ioError, "", errno: .ioError)) {
            try buffers.withUnsafeBufferPointer { try backend.read(into: $0, atPage: 598) }
        }
        // Pages before the cut still read.
        try buffer.withUnsafeMutableBytes { try backend.read(into: $0, atPage: 5) }
        #expect(buffer == DeviceTestSupport.pattern(page: 5))
    }

    @Test("discard punches a hole: the blocks are freed and the pages read as zeros")
    func discardPunchesHole() throws {
        let device = try OpenedFile(pages: 2048, discard: true)
        defer { withExtendedLifetime(device) {} }
        let backend = device.backend
        let path = device.path
        for page in 1..<1025 {
            try DeviceTestSupport.pattern(page: page).withUnsafeBytes { try backend.write($0, atPage: page) }
        }
        let before = try DeviceTestSupport.status(path).st_blocks
        try backend.discard(pages: 1..<513)
        #expect(backend.discardsPages, "ext4 and tmpfs punch holes")
        let after = try DeviceTestSupport.status(path).st_blocks
        #expect(before - after >= 512 * 8, "freed \((before - after) * 512) bytes, expected 2 MiB")
        #expect(try DeviceTestSupport.status(path).st_size == 2048 * 4096, "the size stays")

        var buffer = [UInt8](repeating: 0xEE, count: SwapPage.size)
        try buffer.withUnsafeMutableBytes { try backend.read(into: $0, atPage: 7) }
        #expect(buffer.allSatisfy { $0 == 0 })
        try buffer.withUnsafeMutableBytes { try backend.read(into: $0, atPage: 513) }
        #expect(buffer == DeviceTestSupport.pattern(page: 513), "the page after the hole is untouched")
        #expect(try SwapFile.inspect(path: path).hasHoles)
    }

    @Test("without discard, a discard call leaves the file fully allocated")
    func discardOff() throws {
        let device = try OpenedFile(pages: 1024, discard: false)
        defer { withExtendedLifetime(device) {} }
        let backend = device.backend
        let path = device.path
        let before = try DeviceTestSupport.status(path).st_blocks
        try backend.discard(pages: 1..<513)
        #expect(try DeviceTestSupport.status(path).st_blocks == before)
        #expect(!backend.discardsPages)
    }

    @Test("a second open of the same file, even in this process, is refused while the first lives")
    func exclusive() throws {
        let device = try OpenedFile()
        defer { withExtendedLifetime(device) {} }
        let backend = device.backend
        let path = device.path
        let error = try #require(throws: SwapError.self) { try SwapFile.open(path: path) }
        #expect(error.code == .fileInUse)
        if DeviceTestSupport.isExecutable("/usr/bin/flock") {
            let probe = try DeviceTestSupport.run("/usr/bin/flock", ["-n", "-x", path, "true"])
            #expect(probe.status != 0, "another process sees the lock")
        }
        _ = backend
    }

    @Test("the lock goes with the backend, so the file can be opened again")
    func lockReleased() throws {
        let scratch = try DeviceScratchDirectory()
        defer { withExtendedLifetime(scratch) {} }
        let path = scratch.file("swap")
        try SwapFile.format(path: path, bytes: 4 << 20)
        do {
            let (_, first) = try SwapFile.open(path: path)
            #expect(first.pageCount == 1024)
        }
        let (header, second) = try SwapFile.open(path: path)
        #expect(second.header == header)
    }

    @Test("threads writing and reading their own pages at once all see their own bytes")
    func concurrent() throws {
        let device = try OpenedFile(pages: 2048)
        defer { withExtendedLifetime(device) {} }
        let backend = device.backend
        let threads = 8
        let perThread = 200
        let failures = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            var buffer = [UInt8](repeating: 0, count: SwapPage.size)
            for round in 0..<3 {
                for i in 0..<perThread {
                    let page = 1 + i * threads + thread
                    let bytes = DeviceTestSupport.pattern(page: page, seed: UInt8(round))
                    do {
                        try bytes.withUnsafeBytes { try backend.write($0, atPage: page) }
                        try buffer.withUnsafeMutableBytes { try backend.read(into: $0, atPage: page) }
                        if buffer != bytes { failures.withLock { $0 += 1 } }
                    } catch {
                        failures.withLock { $0 += 1 }
                    }
                }
            }
        }
        #expect(failures.withLock { $0 } == 0, "checked \(threads * perThread * 3) page round trips")
    }
}
