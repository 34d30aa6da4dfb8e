import Foundation
import Testing

@testable import UserSwap

/// When an owner of engine threads goes away, what the threads used goes with it at once: a
/// worker that has said it stopped must not still hold the backend (a swap file stays open, a
/// temporary file stays on disk) until the thread itself is torn down later.
@Suite("Engine threads release what they hold before they report that they stopped")
struct EngineThreadLifetimeTests {
    @Test("a thread-pool I/O engine's backend is released as soon as the engine is")
    func threadPoolReleasesBackend() {
        var heldAfterRelease = 0
        for _ in 0..<200 {
            weak var released: MemoryBackend?
            do {
                let backend = MemoryBackend(pageCount: 16)
                released = backend
                let engine = IOEngine(backend: backend, choice: .threadPool, options: .init(workers: 4), stats: nil)
                withExtendedLifetime(engine) {}
            }
            if released != nil { heldAfterRelease += 1 }
        }
        #expect(heldAfterRelease == 0, "the backend outlived its engine \(heldAfterRelease) times in 200")
    }

    @Test("a space's devices are released as soon as the space is, with the background reclaimer running")
    func spaceReleasesDevices() throws {
        var heldAfterRelease = 0
        for _ in 0..<100 {
            weak var released: MemoryBackend?
            do {
                let backend = MemoryBackend(pageCount: 1 + 512)
                released = backend
                let space = try SwapSpace(
                    .init(
                        memory: 16 * SwapPage.size, devices: [.backend(backend)],
                        encryption: .none, ioEngine: .threadPool))
                let region = try space.makeRegion(bytes: 64 * SwapPage.size)
                for page in 0..<64 { try region.withPage(page, for: .write) { $0.storeBytes(of: page, as: Int.self) } }
            }
            if released != nil { heldAfterRelease += 1 }
        }
        #expect(heldAfterRelease == 0, "a device outlived its space \(heldAfterRelease) times in 100")
    }

    @Test("a space's devices are released as soon as the space and its transparent region are (handler threads)")
    func transparentRegionReleasesDevices() throws {
        var heldAfterRelease = 0
        for _ in 0..<20 {
            weak var released: MemoryBackend?
            do {
                let backend = MemoryBackend(pageCount: 1 + 512)
                released = backend
                let space = try SwapSpace(.init(memory: 16 * SwapPage.size, devices: [.backend(backend)], encryption: .none))
                let region = try space.makeTransparentRegion(bytes: 64 * SwapPage.size, faults: .handlerThreads(2))
                for page in 0..<64 { region.base.storeBytes(of: page, toByteOffset: page * SwapPage.size, as: Int.self) }
            }
            if released != nil { heldAfterRelease += 1 }
        }
        #expect(heldAfterRelease == 0, "a device outlived its space \(heldAfterRelease) times in 20")
    }
}
