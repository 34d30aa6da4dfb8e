import Glibc

/// The engine's RAM: one memfd of `frameCount` pages, mapped shared into the engine. Frames are
/// pages of it, addressed by index. A memfd (rather than anonymous memory) lets transparent mode
/// map the same pages into the application later, with no copy.
struct _UnsafeFrameArena: ~Copyable {
    let frameCount: Int
    let base: UnsafeMutableRawPointer
    let descriptor: FileDescriptor
    private let bytes: Int

    init(frameCount: Int) throws(SwapError) {
        require(frameCount > 0, "a frame arena needs at least one frame, not \(frameCount)")
        self.frameCount = frameCount
        bytes = frameCount * SwapPage.size
        let fd: Int32
        do {
            fd = try Syscalls.memfdCreate("userswap-frames")
        } catch {
            throw SwapError(.outOfMemory, "cannot create the frame arena (memfd_create): \(error.message)", errno: error)
        }
        let owned = FileDescriptor(adopting: fd)
        do {
            try Syscalls.ftruncate(fd, Int64(bytes))
            base = try Syscalls.mmap(length: bytes, protection: PROT_READ | PROT_WRITE, flags: MAP_SHARED, fd: fd)
        } catch {
            throw SwapError(.outOfMemory, "cannot map \(bytes) bytes of frame arena: \(error.message)", errno: error)
        }
        descriptor = owned
    }

    deinit {
        Syscalls.munmap(base, length: bytes)
    }

    /// The bytes of frame `frame`.
    @inline(__always)
    func address(_ frame: UInt32) -> UnsafeMutableRawPointer {
        assert(Int(frame) < frameCount)
        return base + Int(frame) << SwapPage.shift
    }
}

// The base address never changes; each frame is owned by whoever holds its folio.
extension _UnsafeFrameArena: @unchecked Sendable {}
