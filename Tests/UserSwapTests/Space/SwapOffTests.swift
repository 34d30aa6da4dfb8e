import Synchronization
import Testing
@testable import UserSwap

@Suite("Swap devices at run time")
struct SwapOffTests {
    @Test("swapoff brings every page back while threads keep working, and loses nothing", arguments: bothProtocols)
    func swapOffUnderLoad(sync: SwapInSync) throws {
        let frames = 128
        let (space, _) = try makeSpace(memoryPages: frames, swapPages: 1 + 4 * 512, sync: sync, backgroundReclaim: true)
        let second = try space.swapOn(.memory(bytes: 4 * 512 * SwapPage.size, priority: -1))
        let first = space.devices.first { $0 !== second }!
        let pages = 3 * frames
        let region = try space.makeRegion(bytes: pages * SwapPage.size)
        for p in 0..<pages { try region.withPage(p) { fill($0, page: p) } }
        #expect(first.usedPages > 0)
        let wrong = Atomic<Int>(0)
        let done = Atomic<Bool>(false)
        let checks = Atomic<Int>(0)
        let swapOffError = Mutex<SwapError?>(nil)
        runThreads(3) { t in
            if t == 0 {
                do { try space.swapOff(first) } catch { swapOffError.withLock { $0 = error as? SwapError } }
                done.store(true, ordering: .releasing)
                return
            }
            var i = t
            while !done.load(ordering: .acquiring) || i < 2000 {
                let p = (i * 7919) % pages
                do {
                    try region.withPage(p, for: .read) { bytes in
                        if !matches(bytes, page: p) { wrong.add(1, ordering: .relaxed) }
                    }
                    checks.add(1, ordering: .relaxed)
                } catch { wrong.add(1, ordering: .relaxed) }
                i += 1
            }
        }
        #expect(swapOffError.withLock { $0 } == nil)
        #expect(wrong.load(ordering: .relaxed) == 0)
        #expect(first.usedPages == 0)
        #expect(space.devices.count == 1 && space.devices[0] === second)
        for p in 0..<pages { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        #expect(space.checkInvariants() == [])
        print("swapoff under load (\(sync)): \(checks.load(ordering: .relaxed)) concurrent page checks, 0 wrong")
    }

    @Test("swapoff fails cleanly when memory and the other devices cannot hold the data")
    func swapOffTooBig() throws {
        let (space, _) = try makeSpace(memoryPages: 32, swapPages: 1 + 2 * 512)
        let device = space.devices[0]
        let region = try space.makeRegion(bytes: 300 * SwapPage.size)
        for p in 0..<300 { try region.withPage(p) { fill($0, page: p) } }
        #expect(throws: SwapError(.outOfMemory, "")) { try space.swapOff(device) }
        // Still in service, nothing lost.
        #expect(space.devices.count == 1)
        for p in 0..<300 { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        try region.withPage(299) { fill($0, page: 299, generation: 1) }
        #expect(space.checkInvariants() == [])
    }

    @Test("swapoff of a device not in the space is a typed error")
    func notInSpace() throws {
        let (space, _) = try makeSpace(memoryPages: 8)
        let stranger = try makeDevice(pages: 1 + 512)
        #expect(throws: SwapError(.invalidArgument, "")) { try space.swapOff(stranger) }
    }
}
