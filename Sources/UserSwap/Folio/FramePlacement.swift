/// Where a folio's bytes live: in its arena frame (almost always), or at a fixed page of a
/// `FrameWindow` (a transparent region's page, which the application maps directly).
struct FramePlacement: Equatable, Sendable {
    let raw: UInt64

    static let arena = FramePlacement(raw: 0)

    init(raw: UInt64) { self.raw = raw }

    init(window: FrameWindow, page: Int) {
        raw = UInt64(window.slot + 1) << 32 | UInt64(page)
    }

    var isArena: Bool { raw == 0 }
    /// The window's slot in the engine's `FrameWindowTable`.
    var windowSlot: Int { Int(raw >> 32) - 1 }
    var page: Int { Int(raw & 0xffff_ffff) }
}
