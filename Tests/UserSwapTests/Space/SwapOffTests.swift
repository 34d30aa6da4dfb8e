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
    /// Where a test holds an allocation while swapoff runs.
    enum AllocationWindow: String, CaseIterable, CustomStringConvertible {
        /// After the device accepted the allocation, before any cluster lock: allocation stops
        /// meanwhile, and the allocation must see that under the cluster lock.
        case beforeClusterLock
        /// Under the cluster lock, after the allocation saw allocation allowed: it takes its
        /// slot, and swapoff must wait for it, then bring the slot back.
        case underClusterLock
        var description: String { rawValue }
    }

    /// The allocator checks that a device takes allocations before it locks a cluster. A thread
    /// held in the window while swapoff finds the device empty must not leave a slot on a
    /// device swapoff removed: before the cluster lock, it moves on to the next device; under
    /// it, swapoff waits for it (the device's user reference) and then for its slot to go.
    @Test(
        "an allocation held while swapoff finds the device empty leaves no slot on the removed device",
        arguments: AllocationWindow.allCases)
    func allocationRacingSwapOff(window: AllocationWindow) throws {
        let (space, _) = try makeSpace(memoryPages: 16)
        let second = try space.swapOn(.memory(bytes: (1 + 512) * SwapPage.size, priority: -1))
        let first = space.devices.first { $0 !== second }!
        let inWindow = DispatchSemaphore(value: 0)
        let proceed = DispatchSemaphore(value: 0)
        let held = Atomic<Bool>(false)
        let hook = window == .beforeClusterLock ? first.beforeAllocationLock : first.afterWriteOKLocked
        hook.arm {
            guard !held.exchange(true, ordering: .relaxed) else { return }
            inWindow.signal()
            proceed.wait()
        }
        defer { hook.disarm() }
        let allocated = Mutex<SwapEntry?>(nil)
        let swapOffResult = Mutex<Result<Void, SwapError>?>(nil)
        let allocationDone = DispatchSemaphore(value: 0)
        let swapOffDone = DispatchSemaphore(value: 0)
        Thread {
            let entry = try? space.engine.devices.allocate()
            allocated.withLock { $0 = entry }
            allocationDone.signal()
        }.start()
        inWindow.wait()
        Thread {
            let result = Result { () throws(SwapError) in try space.swapOff(first) }
            swapOffResult.withLock { $0 = result }
            swapOffDone.signal()
        }.start()
        // Once allocation on the device has stopped, give swapoff time to finish if it does
        // not wait for the held allocation, then let the allocation go on.
        while first.writeOK.load(ordering: .acquiring) { usleep(100) }
        usleep(100_000)
        #expect(swapOffResult.withLock { $0 } == nil, "swapoff finished while an allocation was entering the device")
        proceed.signal()
        allocationDone.wait()
        let entry = try #require(allocated.withLock { $0 })
        switch window {
        case .beforeClusterLock:
            #expect(entry.type == second.type, "the slot went to the device being removed")
        case .underClusterLock:
            // The slot's owner lets it go a moment later; swapoff waits for that, asleep.
            #expect(entry.type == first.type)
            usleep(50_000)
            #expect(swapOffResult.withLock { $0 } == nil, "swapoff finished with a slot in use")
            first.put(entry)
        }
        swapOffDone.wait()
        #expect(first.usedPages == 0)
        #expect(swapOffResult.withLock { $0.map { (try? $0.get()) != nil } } == true)
        #expect(space.devices.count == 1 && space.devices[0] === second)
        if entry.type == second.type { second.put(entry) }
        #expect(space.checkInvariants() == [])
    }
    #endif

    @Test("swapoff waits, asleep, for a slot held elsewhere, and finishes once it is freed")
    func swapOffWaitsForHeldSlot() throws {
        let (space, _) = try makeSpace(memoryPages: 16)
        let second = try space.swapOn(.memory(bytes: (1 + 512) * SwapPage.size, priority: -1))
        let first = space.devices.first { $0 !== second }!
        // A slot nobody maps and no folio holds (the folio-less allocation): swapoff can only
        // wait for its owner to free it.
        let entry = try first.allocate()
        let result = Mutex<Result<Void, SwapError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread {
            let r = Result { () throws(SwapError) in try space.swapOff(first) }
            result.withLock { $0 = r }
            done.signal()
        }.start()
        usleep(200_000)
        #expect(result.withLock { $0 } == nil, "swapoff gave up (or finished) with a slot in use")
        first.put(entry)
        done.wait()
        #expect(result.withLock { $0.map { (try? $0.get()) != nil } } == true)
        #expect(space.devices.count == 1 && space.devices[0] === second)
    }

    @Test("swapoff names the pages it cannot read and leaves the device in service, nothing lost")
    func swapOffReadError() throws {
        let (space, backend) = try makeSpace(memoryPages: 64)
        let device = space.devices[0]
        let region = try space.makeRegion(bytes: 8 * SwapPage.size)
        try region.advise(.random)
        for p in 0..<8 { try region.withPage(p) { fill($0, page: p) } }
        try region.swapOut(pages: 0..<8)
        // The first two reads fail: pages 0 and 1, which swapoff brings back first.
        backend.failReads.store(2, ordering: .relaxed)
        let result = Result { () throws(SwapError) in try space.swapOff(device) }
        guard case .failure(let error) = result else {
            Issue.record("swapoff succeeded although two pages could not be read")
            return
        }
        #expect(error.code == .ioError)
        #expect(error.message.contains("could not read 2 pages"), "\(error)")
        #expect(error.message.contains("region \(region.id) page 0 ") && error.message.contains("region \(region.id) page 1 "), "\(error)")
        #expect(space.devices.count == 1 && device.usedPages == 2, "the unread pages stay on the device")
        #expect(space.checkInvariants() == [])
        // Still in service: the pages read now, and a second swapoff empties the device.
        for p in 0..<8 { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        try region.swapOut(pages: 0..<8)
        try space.swapOff(device)
        #expect(space.devices.isEmpty)
        for p in 0..<8 { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
    }

    @Test("a second swapoff of a device being removed is a typed error, and the first one finishes")
    func concurrentSwapOff() throws {
        let (space, _) = try makeSpace(memoryPages: 16)
        let device = space.devices[0]
        let region = try ScheduleExplorationTests.swappedPage(space)
        let errors = Mutex<[SwapError]>([])
        let outcomes = Mutex<[String]>([])
        // The first swapoff stops at its first yield point (the device claimed, its page not
        // brought back yet) while the second one runs to its end.
        let finished = runControlled(
            [
                {
                    do {
                        try space.swapOff(device)
                        outcomes.withLock { $0.append("first done") }
                    } catch { errors.withLock { $0.append(error as! SwapError) } }
                },
                {
                    do {
                        try space.swapOff(device)
                        outcomes.withLock { $0.append("second done") }
                    } catch { errors.withLock { $0.append(error as! SwapError) } }
                },
            ], choose: ScheduleExplorationTests.FirstThenSecond().choose)
        try #require(finished, "threads hung")
        #expect(outcomes.withLock { $0 } == ["first done"])
        let error = try #require(errors.withLock { $0 }.first)
        #expect(errors.withLock { $0.count } == 1)
        #expect(error.code == .invalidArgument)
        #expect(error.message.contains("already being removed"), "\(error.message)")
        #expect(space.devices.isEmpty)
        try region.withPage(0, for: .read) { #expect(matches($0, page: 0)) }
        #expect(space.checkInvariants() == [])
    }

    @Test("swapoff of a device not in the space is a typed error")
    func notInSpace() throws {
        let (space, _) = try makeSpace(memoryPages: 8)
        let stranger = try makeDevice(pages: 1 + 512)
        #expect(throws: SwapError(.invalidArgument, "")) { try space.swapOff(stranger) }
    }
}
