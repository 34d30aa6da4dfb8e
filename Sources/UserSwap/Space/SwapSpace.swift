import Synchronization

/// Swappable memory for a program: a RAM budget of frames, swap devices behind it, and regions
/// whose pages move between the two. The entry point of the library.
///
/// ```swift
/// let space = try SwapSpace(.init(memory: 256 << 20, devices: [.file(path: "/tmp/a.swap", size: 1 << 30)]))
/// let region = try space.makeRegion(bytes: 1 << 30)
/// try region.withPage(7) { page in page.storeBytes(of: 42, as: Int.self) }
/// ```
public final class SwapSpace: Sendable {
    /// What a space is made of.
    public struct Configuration: Sendable {
        /// RAM budget in bytes: the most memory the space's pages occupy at once.
        public var memory: Int
        /// Swap devices, added in order.
        public var devices: [DeviceConfiguration]
        /// How concurrent swap-ins of one entry synchronize (swap-cache synchronization by default).
        public var sync: SwapInSync
        /// How reclaim picks pages: frequency-ranked eviction by default (`ReclaimPolicy`);
        /// `.workingset` for the kernel's two lists with refault detection.
        public var reclaimPolicy: ReclaimPolicy
        /// Run the background reclaimer threads: kswapd, which frees frames before allocations
        /// run out, and the slot reclaimer, which frees slots only the swap cache holds while
        /// swap is over half full. Without them, only allocating threads reclaim (frames, and
        /// slots when an allocation finds none free).
        public var backgroundReclaim: Bool
        /// How pages are protected on every device of the space but `.memory`, those added
        /// later included: sealed under a random per-space key by default (`.randomKey`);
        /// `.none` writes them in clear.
        public var encryption: Encryption
        /// The I/O engine of each device added (io_uring for swap files by default).
        public var ioEngine: IOEngineChoice
        /// Its sizes: request slots, pool workers, write-backs in flight.
        public var ioOptions: IOEngineOptions
        /// The most pages pinned through the `async` API at once (pins held across `await`
        /// cannot be reclaimed); past it an async pin throws `.pinLimit`. Half the memory
        /// budget's pages when nil. Blocking pins are not counted.
        public var asyncPinLimit: Int?

        /// A configuration with `memory` bytes of RAM for pages (at least one 4 KiB page) and
        /// `devices`; every other setting has the default a program should start from.
        public init(
            memory: Int, devices: [DeviceConfiguration] = [], sync: SwapInSync = .swapCache,
            reclaimPolicy: ReclaimPolicy = .frequency,
            backgroundReclaim: Bool = true, encryption: Encryption = .randomKey,
            ioEngine: IOEngineChoice = .automatic, ioOptions: IOEngineOptions = IOEngineOptions(),
            asyncPinLimit: Int? = nil
        ) {
            self.asyncPinLimit = asyncPinLimit
            self.ioEngine = ioEngine
            self.ioOptions = ioOptions
            self.memory = memory
            self.devices = devices
            self.sync = sync
            self.reclaimPolicy = reclaimPolicy
            self.backgroundReclaim = backgroundReclaim
            self.encryption = encryption
        }
    }

    /// A swap device to add to a space.
    public enum DeviceConfiguration: Sendable {
        /// A swap file; created (formatted) with `size` bytes when it does not exist. A file that
        /// exists is used as it is when `size` is nil, and refused (`.fileExists`) when its size
        /// differs from `size`.
        ///
        /// `discard` punches each freed cluster out of the file. Off by default, as the kernel's
        /// `swapon` without `--discard`: the file keeps every block `format` allocated, so
        /// swap-out never meets a full disk, and a rewritten slot is an overwrite of written
        /// blocks rather than a new allocation the file system must convert (random swap: ~4 %
        /// more throughput without it, see docs/DESIGN.md, *Allocator*).
        case file(path: String, size: Int64? = nil, priority: Int = 0, discard: Bool = false)
        /// A swap file of `size` bytes with no name (`SwapFile.openTemporary`): made in
        /// `directory` (`$TMPDIR`, else /tmp, when nil) and unlinked before any page reaches it
        /// (`O_TMPFILE` where the file system has it), so that no other process can open it by
        /// a path and nothing is left on disk when the space goes away or the process dies,
        /// even by SIGKILL. What `userswap run` and `userswap bench` swap to.
        case temporary(size: Int64, directory: String? = nil, priority: Int = 0, discard: Bool = false)
        /// Pages in this process's memory (tests, benchmarks of the engine alone).
        case memory(bytes: Int, priority: Int = 0)
        /// Any backend (a tier over a file, a remote store); `discard` passes freed clusters down
        /// to it.
        case backend(any SwapBackend, priority: Int = 0, discard: Bool = false)
    }

    /// The configuration the space was made with.
    public let configuration: Configuration
    let engine: SwapEngine
    /// The configuration's encryption made for this space (its key lives here); nil for `.none`.
    private let sealer: Encryption.Sealer?
    /// What the space could not do as its configuration asked, without failing: a page key that
    /// could not be locked in RAM (`SwapError(.permissionDenied)` saying how to fix it). Empty
    /// when all went as asked; programs should show these to their user.
    public let warnings: [SwapError]
    let nextRegionID = Atomic<Int>(1)
    /// Frees cache-only slots in the background (kernel: `si->reclaim_work`); nil without
    /// background reclaim.
    let slotReclaimer: SlotReclaimWorker?

    /// Makes a space: reserves its RAM budget (memory the kernel provides on first use) and
    /// opens its devices. Throws when a device cannot be opened or created, or when the budget
    /// holds no page.
    public init(_ configuration: Configuration) throws(SwapError) {
        let frames = configuration.memory / SwapPage.size
        guard frames >= 1 else {
            throw SwapError(.invalidArgument, "a RAM budget of \(configuration.memory) bytes holds no page; give at least 4K")
        }
        try configuration.ioOptions.validate()
        if let limit = configuration.asyncPinLimit, limit < 1 {
            throw SwapError(
                .invalidArgument, "an async pin limit of \(limit) allows no pin; give 1 or more, or nil for half the memory budget")
        }
        self.configuration = configuration
        if let made = try configuration.encryption.makeSealer?() {
            sealer = made.0
            warnings = made.warnings
        } else {
            sealer = nil
            warnings = []
        }
        engine = try SwapEngine(
            frameCount: frames, devices: SwapDeviceSet(), sync: configuration.sync,
            policy: configuration.reclaimPolicy,
            // Two of the largest readahead windows (see `Watermarks`).
            readaheadReserve: 2 * ReadaheadState.maxWindow, asyncPinLimit: configuration.asyncPinLimit,
            // Half of a device's request slots: async pins alone never use them all, so their
            // reads are never done on the task's thread for want of one (`AsyncReadGate`).
            asyncReadLimit: configuration.ioOptions.slots / 2)
        slotReclaimer = configuration.backgroundReclaim ? SlotReclaimWorker(cache: engine.cache) : nil
        // Every stored property is set: if a device fails, deinit runs and stops the threads.
        for d in configuration.devices { try addDevice(d) }
        if configuration.backgroundReclaim {
            let kswapd = BackgroundReclaimer(reclaimer: engine.reclaimer)
            engine.reclaimer.kswapd.withLock { $0 = kswapd }
        }
    }

    deinit {
        engine.reclaimer.kswapd.withLock { $0 }?.stop()
        slotReclaimer?.stop()
    }

    /// Adds a swap device (kernel: `swapon`). Returns it.
    @discardableResult
    public func addDevice(_ d: DeviceConfiguration) throws(SwapError) -> SwapDevice {
        let type = try engine.devices.nextFreeType()
        // Unowned: the engine owns its devices, so it outlives every call.
        let uncharge: @Sendable (SwapTableSlot) -> Void = { [unowned engine] slot in engine.cache.swapUncharge(slot) }
        // Weak: a device may outlive its space (the caller keeps it after swapoff).
        let filled: @Sendable (SwapDevice) -> Void = { [weak slotReclaimer] device in slotReclaimer?.clusterFilled(device) }
        let device: SwapDevice
        let io = { (backend: any SwapBackend) in
            IOEngine(
                backend: backend, choice: self.configuration.ioEngine, options: self.configuration.ioOptions,
                stats: self.engine.stats)
        }
        switch d {
        case .file(let path, let size, let priority, let discard):
            if let size, !fileExists(path) {
                try SwapFile.format(path: path, bytes: size)
            }
            let (header, backend) = try SwapFile.open(path: path, discard: discard)
            if let size, Int64(header.pageCount) != max(0, size) / Int64(SwapPage.size) {
                throw SwapError(
                    .fileExists,
                    "\(path) exists already as a swap file of \(SwapHeader.describe(bytes: Int64(header.pageCount) * Int64(SwapPage.size))), not the \(SwapHeader.describe(bytes: size)) asked for: ask for no size to use it as it is, or remove it to have one of the new size made"
                )
            }
            // A sealed device's engine sees the sealing tier, not the file (so it transfers
            // through the tier: synchronously).
            let outer = try sealed(backend)
            device = try SwapDevice(
                backend: outer, header: header, type: type, priority: priority,
                discard: discard, swapUncharge: uncharge, clusterFilled: filled, io: io(outer))
        case .temporary(let size, let directory, let priority, let discard):
            let (header, backend) = try SwapFile.openTemporary(bytes: size, in: directory, discard: discard)
            let outer = try sealed(backend)
            device = try SwapDevice(
                backend: outer, header: header, type: type, priority: priority,
                discard: discard, swapUncharge: uncharge, clusterFilled: filled, io: io(outer))
        case .memory(let bytes, let priority):
            // Never sealed: its pages stay in this process's memory.
            let backend = MemoryBackend(pageCount: bytes / SwapPage.size)
            device = try SwapDevice(
                backend: backend, header: nil, type: type, priority: priority,
                discard: false, swapUncharge: uncharge, clusterFilled: filled, io: io(backend))
        case .backend(let backend, let priority, let discard):
            let backend = try sealed(backend)
            device = try SwapDevice(
                backend: backend, header: nil, type: type, priority: priority,
                discard: discard, swapUncharge: uncharge, clusterFilled: filled, io: io(backend))
        }
        try engine.devices.add(device)
        engine.stats.noteEngine(device.io.info)
        return device
    }

    /// `backend` as the space's devices see it: through the space's encryption, if any, unless
    /// it seals its pages already.
    private func sealed(_ backend: any SwapBackend) throws(SwapError) -> any SwapBackend {
        guard let sealer, !backend.sealsPages else { return backend }
        return try sealer(backend)
    }

    /// The space's swap devices, highest priority first.
    public var devices: [SwapDevice] { engine.devices.devices }

    /// Creates a region of `bytes` (rounded up to whole pages) of swappable memory. Its pages
    /// read as zeroes until written.
    /// Pages are charged to `group` (the root group when nil) and handled in folios of
    /// `folioSize` bytes (a power of two from 4 KiB to 2 MiB): larger folios mean fewer faults
    /// and larger I/O, and fall back to single pages when memory or swap is fragmented.
    public func makeRegion(bytes: Int, group: MemoryGroup? = nil, folioSize: Int = SwapPage.size) throws(SwapError) -> Region {
        guard bytes > 0 else { throw SwapError(.invalidArgument, "a region needs at least one byte") }
        guard folioSize >= SwapPage.size, folioSize <= SwapPage.size << SwapCluster.maxOrder,
            folioSize & (folioSize - 1) == 0
        else {
            throw SwapError(.invalidArgument, "folio size \(folioSize) must be a power of two from 4K to 2M")
        }
        let pages = (bytes + SwapPage.size - 1) / SwapPage.size
        let id = nextRegionID.wrappingAdd(1, ordering: .relaxed).oldValue  // Relaxed: the read-modify-write alone makes ids unique
        guard id < Region.idLimit else { throw Self.regionIDsUsedUp() }
        return try Region(
            id: id, pageCount: pages, group: (group ?? engine.groups.root).id,
            folioOrder: (folioSize / SwapPage.size).trailingZeroBitCount, engine: engine)
    }

    /// The error of a space that has made all the regions it can: region ids are never reused,
    /// and a reverse-map key holds 23 bits of one.
    static func regionIDsUsedUp() -> SwapError {
        SwapError(
            .outOfMemory,
            "this space has made \(Region.idLimit - 1) regions, the most one space makes (region ids are not reused); keep regions and arrays longer, or make a new SwapSpace"
        )
    }

    /// Creates swappable memory used through plain loads and stores (see `TransparentRegion`):
    /// `bytes` rounded up to pages, charged to `group`, its faults served as `faults` says:
    /// handler threads (each resolves one fault at a time, its I/O included), or each faulting
    /// thread itself (faster; kernel code touching unmapped pages then gets EFAULT). Throws
    /// `.permissionDenied` or `.unsupported` when the process may not use userfaultfd, naming what
    /// to change.
    public func makeTransparentRegion(
        bytes: Int, group: MemoryGroup? = nil,
        faults: TransparentRegion.FaultService = .handlerThreads(4)
    ) throws(SwapError) -> TransparentRegion {
        guard bytes > 0 else { throw SwapError(.invalidArgument, "a region needs at least one byte") }
        if case .handlerThreads(let count) = faults, count <= 0 {
            throw SwapError(.invalidArgument, "a transparent region needs at least one fault handler thread")
        }
        let pages = (bytes + SwapPage.size - 1) / SwapPage.size
        guard pages < 1 << 32 else { throw SwapError(.invalidArgument, "a transparent region holds at most 16 TiB") }
        let window = try engine.allocator.windows.make(pageCount: pages)
        let id = nextRegionID.wrappingAdd(1, ordering: .relaxed).oldValue  // Relaxed: the read-modify-write alone makes ids unique
        guard id < Region.idLimit else {
            engine.allocator.windows.remove(window)
            throw Self.regionIDsUsedUp()
        }
        do {
            let region = try Region(
                id: id, pageCount: pages, group: (group ?? engine.groups.root).id,
                folioOrder: 0, engine: engine, window: window)
            return try TransparentRegion(region: region, window: window, faults: faults)
        } catch {
            engine.allocator.windows.remove(window)
            throw error
        }
    }

    /// Creates a memory group under `parent` (the space's root group when nil), with optional
    /// limits in bytes.
    public func makeGroup(
        name: String, memoryLimit: Int? = nil, swapLimit: Int? = nil,
        parent: MemoryGroup? = nil
    ) throws(SwapError) -> MemoryGroup {
        try engine.groups.make(
            name: name, parent: parent, frames: engine.frames,
            memoryLimit: memoryLimit, swapLimit: swapLimit)
    }

    /// The group every region belongs to unless given another; its usage covers the whole space.
    public var rootGroup: MemoryGroup { engine.groups.root }

    /// Every group, the root first.
    public var groups: [MemoryGroup] { engine.groups.list }

    /// Event counters.
    public var statistics: SwapStatistics { engine.stats }

    /// Frames in the RAM budget.
    public var frameCount: Int { engine.frames.frameCount }

    /// Frames holding pages now.
    public var residentFrames: Int { engine.allocator.pool.frameCount - engine.allocator.pool.freeFrames }

    /// The protocol swap-ins use.
    public var sync: SwapInSync { engine.sync }

    private func fileExists(_ path: String) -> Bool {
        (try? Syscalls.lstat(path: path)) != nil
    }
}
