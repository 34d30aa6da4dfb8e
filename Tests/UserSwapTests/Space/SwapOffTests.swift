import Foundation
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

    #if DEBUG
    /// The allocator checks that a device takes allocations before it locks a cluster. A thread
    /// held right after that check while swapoff finds the device empty must not take a slot
    /// there once swapoff has stopped allocation: it moves on to the next device, and swapoff
    /// waits for it rather than remove a device an allocation is still entering.
    @Test("an allocation held between its device check and the cluster lock takes no slot on a device swapoff removes")
    func allocationRacingSwapOff() throws {
        let (space, _) = try makeSpace(memoryPages: 16)
        let second = try space.swapOn(.memory(bytes: (1 + 512) * SwapPage.size, priority: -1))
        let first = space.devices.first { $0 !== second }!
        let inWindow = DispatchSemaphore(value: 0)
        let proceed = DispatchSemaphore(value: 0)
        let held = Atomic<Bool>(false)
        first.beforeAllocationLock.arm {
            guard !held.exchange(true, ordering: .relaxed) else { return }
            inWindow.signal()
            proceed.wait()
        }
        defer { first.beforeAllocationLock.disarm() }
        let allocated = Mutex<SwapEntry?>(nil)
        let swapOffResult = Mutex<Result<Void, SwapError>?>(nil)
        let finished = DispatchSemaphore(value: 0)
        Thread {
            let entry = try? space.engine.devices.allocate()
            allocated.withLock { $0 = entry }
            finished.signal()
        }.start()
        inWindow.wait()
        Thread {
            let result = Result { () throws(SwapError) in try space.swapOff(first) }
            swapOffResult.withLock { $0 = result }
            finished.signal()
        }.start()
        // Once allocation on the device has stopped, give swapoff time to finish if it does
        // not wait for the held allocation, then let the allocation go on.
        while first.writeOK.load(ordering: .acquiring) { usleep(100) }
        usleep(100_000)
        proceed.signal()
        finished.wait()
        finished.wait()
        let entry = try #require(allocated.withLock { $0 })
        #expect(entry.type == second.type, "the slot went to the device being removed")
        #expect(first.usedPages == 0)
        #expect(swapOffResult.withLock { $0.map { (try? $0.get()) != nil } } == true)
        #expect(space.devices.count == 1 && space.devices[0] === second)
        if entry.type == second.type { second.put(entry) }
        #expect(space.checkInvariants() == [])
    }
    #endif

    @Test("swapoff of a device not in the space is a typed error")
    func notInSpace() throws {
        let (space, _) = try makeSpace(memoryPages: 8)
        let stranger = try makeDevice(pages: 1 + 512)
        #expect(throws: SwapError(.invalidArgument, "")) { try space.swapOff(stranger) }
    }
}
