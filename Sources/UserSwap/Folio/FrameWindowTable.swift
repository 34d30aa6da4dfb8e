import Synchronization

/// The frame windows of a space by slot, so that a folio's bytes are found from its placement
/// word without a lock. A window leaves the table only after its last folio was freed.
final class FrameWindowTable: Sendable {
    static let capacity = 1 << 12

    private let slots = _UnsafeAtomicArray<UInt>(count: FrameWindowTable.capacity, initialValue: 0)
    /// Strong references to the windows in the table, and which slots are taken.
    private let windows = Mutex<[Int: FrameWindow]>([:], rank: .windowTable)

    /// Creates a window of `pageCount` pages in a free slot (under the lock, so two regions made
    /// at once never pick the same slot).
    func make(pageCount: Int) throws(SwapError) -> FrameWindow {
        let made: Result<FrameWindow, SwapError> = windows.withLock { w in
            guard let slot = (0..<Self.capacity).first(where: { w[$0] == nil }) else {
                return .failure(SwapError(.invalidArgument, "a space holds at most \(Self.capacity) transparent regions at once"))
            }
            let window: FrameWindow
            do throws(SwapError) {
                window = try FrameWindow(slot: slot, pageCount: pageCount)
            } catch {
                return .failure(error)
            }
            w[slot] = window
            slots[slot].pointee.store(UInt(bitPattern: Unmanaged.passUnretained(window).toOpaque()), ordering: .releasing)
            return .success(window)
        }
        return try made.get()
    }

    /// Takes `window` out; its folios must all be freed.
    func remove(_ window: FrameWindow) {
        require(window.liveFolios.load(ordering: .acquiring) == 0, "removing a frame window with live folios")
        slots[window.slot].pointee.store(0, ordering: .releasing)
        windows.withLock { _ = $0.removeValue(forKey: window.slot) }
    }

    /// The window in `slot`; traps for an empty slot (a folio outliving its window is a bug).
    @inline(__always)
    subscript(slot: Int) -> FrameWindow {
        let bits = slots[slot].pointee.load(ordering: .acquiring)
        guard let raw = UnsafeRawPointer(bitPattern: bits) else { trap("no frame window \(slot)") }
        // Sound: `windows` holds a strong reference while the slot is set.
        return Unmanaged<FrameWindow>.fromOpaque(raw).takeUnretainedValue()
    }
}
