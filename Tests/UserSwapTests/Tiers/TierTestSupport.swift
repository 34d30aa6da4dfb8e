import Glibc
import Synchronization

@testable import UserSwap

/// Page contents for the tier tests.
enum TierPages {
    /// Text-like and compressible (LZ4 takes it to a few hundred bytes), different for every
    /// page and generation: a sentence naming both, repeated.
    static func text(_ bytes: UnsafeMutableRawBufferPointer, page: Int, generation: Int = 0) {
        let sentence = Array("page \(page), generation \(generation): the quick brown fox jumps over the lazy dog; ".utf8)
        for i in 0..<bytes.count { bytes[i] = sentence[i % sentence.count] }
    }

    static func isText(_ bytes: UnsafeMutableRawBufferPointer, page: Int, generation: Int = 0) -> Bool {
        let sentence = Array("page \(page), generation \(generation): the quick brown fox jumps over the lazy dog; ".utf8)
        for i in 0..<bytes.count where bytes[i] != sentence[i % sentence.count] { return false }
        return true
    }

    /// Incompressible: SplitMix64 output seeded by the page and generation.
    static func random(_ bytes: UnsafeMutableRawBufferPointer, page: Int, generation: Int = 0) {
        var generator = SeededRandom(seed: UInt64(page) << 20 | UInt64(generation & 0xFFFFF))
        let words = bytes.bindMemory(to: UInt64.self)
        for i in words.indices { words[i] = generator.next() }
    }

    static func isRandom(_ bytes: UnsafeMutableRawBufferPointer, page: Int, generation: Int = 0) -> Bool {
        var generator = SeededRandom(seed: UInt64(page) << 20 | UInt64(generation & 0xFFFFF))
        let words = bytes.bindMemory(to: UInt64.self)
        for i in words.indices where words[i] != generator.next() { return false }
        return true
    }

    /// Half the pages text, a quarter random, a quarter same-filled (by page number), so one
    /// run exercises the pool, the rejects and the same-filled path.
    static func mixed(_ bytes: UnsafeMutableRawBufferPointer, page: Int, generation: Int) {
        switch page % 4 {
        case 0, 1: text(bytes, page: page, generation: generation)
        case 2: random(bytes, page: page, generation: generation)
        default: bytes.bindMemory(to: UInt64.self).initialize(repeating: UInt64(page) << 32 | UInt64(generation & 0xFFFF_FFFF))
        }
    }

    static func isMixed(_ bytes: UnsafeMutableRawBufferPointer, page: Int, generation: Int) -> Bool {
        switch page % 4 {
        case 0, 1: return isText(bytes, page: page, generation: generation)
        case 2: return isRandom(bytes, page: page, generation: generation)
        default: return bytes.bindMemory(to: UInt64.self).allSatisfy { $0 == UInt64(page) << 32 | UInt64(generation & 0xFFFF_FFFF) }
        }
    }
}

/// A memory device below a tier that can slow its transfers down (to widen the windows of
/// write-back races), fail writes on demand, and count what it moves.
final class SlowBackend: SwapBackend {
    let memory: MemoryBackend
    /// Microseconds each write (and each read) sleeps before transferring.
    let writeDelayMicros = Atomic<Int>(0)
    let readDelayMicros = Atomic<Int>(0)
    /// Fail this many of the next writes.
    let failWrites = Atomic<Int>(0)

    init(pageCount: Int) { memory = MemoryBackend(pageCount: pageCount) }

    var pageCount: Int { memory.pageCount }

    func read(into buffer: UnsafeMutableRawBufferPointer, atPage page: Int) throws(SwapError) {
        delay(readDelayMicros)
        try memory.read(into: buffer, atPage: page)
    }

    func read(into buffers: UnsafeBufferPointer<UnsafeMutableRawBufferPointer>, atPage page: Int) throws(SwapError) {
        delay(readDelayMicros)
        try memory.read(into: buffers, atPage: page)
    }

    func write(_ buffer: UnsafeRawBufferPointer, atPage page: Int) throws(SwapError) {
        delay(writeDelayMicros)
        if failWrites.load(ordering: .relaxed) > 0, failWrites.wrappingSubtract(1, ordering: .relaxed).oldValue > 0 {
            throw SwapError(.ioError, "injected write error at page \(page)", errno: .ioError)
        }
        try memory.write(buffer, atPage: page)
    }

    func write(_ buffers: UnsafeBufferPointer<UnsafeRawBufferPointer>, atPage page: Int) throws(SwapError) {
        delay(writeDelayMicros)
        try memory.write(buffers, atPage: page)
    }

    private func delay(_ micros: borrowing Atomic<Int>) {
        let us = micros.load(ordering: .relaxed)
        if us > 0 { usleep(UInt32(us)) }
    }
}

/// Runs `body` with a page-sized, page-aligned buffer.
func withPageBuffer<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: SwapPage.size, alignment: SwapPage.size)
    defer { buffer.deallocate() }
    buffer.initializeMemory(as: UInt8.self, repeating: 0)
    return try body(buffer)
}
