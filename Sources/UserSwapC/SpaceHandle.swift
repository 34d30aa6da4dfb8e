import Synchronization
import UserSwap

/// What a `userswap_space *` points to: the space, and what the C caller made in it (mappings,
/// pins, groups), so that addresses can be found again and destroying the space releases all.
///
/// The handle is retained once for the C caller (`Unmanaged`) from `userswap_space_create` to
/// `userswap_space_destroy`; mappings, pins and groups are retained by its state, and their C
/// handles are unretained pointers to them.
final class SpaceHandle: Sendable {
    let space: SwapSpace
    /// Mappings, pins and groups. Protected by its mutex; never held across I/O (a pin's
    /// swap-in happens after the lookup, outside it).
    let state = Mutex(State())

    struct State {
        /// Mappings by address, sorted by base: a lookup is a binary search.
        var mappings: [MappingHandle] = []
        /// Live pins, by identity.
        var pins: [ObjectIdentifier: PinHandle] = [:]
        /// Groups made through the C interface (the engine keeps them too; this keeps their
        /// handles alive as long as the space).
        var groups: [GroupHandle] = []

        /// The mapping whose memory holds `address`, if any.
        func mapping(containing address: UInt) -> MappingHandle? {
            var low = 0, high = mappings.count
            while low < high {
                let middle = (low + high) / 2
                if mappings[middle].end <= address { low = middle + 1 } else { high = middle }
            }
            guard low < mappings.count, mappings[low].base <= address else { return nil }
            return mappings[low]
        }
    }

    init(space: SwapSpace) {
        self.space = space
    }

    /// The handle behind a C pointer the caller got from `userswap_space_create`.
    static func from(_ pointer: OpaquePointer) -> SpaceHandle {
        Unmanaged<SpaceHandle>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
    }

    /// The mapping holding [address, address + length), and the pages of that range; throws
    /// `.invalidArgument` when the range is not inside one mapping of this space.
    func pages(at address: UnsafeRawPointer, length: Int) throws(SwapError) -> (MappingHandle, Range<Int>) {
        let start = UInt(bitPattern: address)
        guard let mapping = state.withLock({ $0.mapping(containing: start) }) else {
            throw SwapError(.invalidArgument, "address \(address) is not in a mapping of this space (made by userswap_map)")
        }
        let (end, overflow) = start.addingReportingOverflow(UInt(length))
        guard !overflow, end <= mapping.end else {
            throw SwapError(
                .invalidArgument,
                "\(length) bytes from \(address) run past the end of their mapping (\(mapping.region.byteCount) bytes at \(mapping.region.base))"
            )
        }
        let first = Int((start - mapping.base) / UInt(SwapPage.size))
        let last = Int((end - mapping.base + UInt(SwapPage.size) - 1) / UInt(SwapPage.size))
        return (mapping, first..<max(last, first + 1))
    }
}

/// A `userswap_map` mapping: a transparent region, and the count of its pages pinned through
/// the C interface (unmapping waits for none).
final class MappingHandle: Sendable {
    let region: TransparentRegion
    let base: UInt
    let end: UInt
    /// Pins of its pages alive now. Protected by the space handle's mutex: written only inside
    /// `state.withLock`.
    let pins = Atomic<Int>(0)

    init(region: TransparentRegion) {
        self.region = region
        base = UInt(bitPattern: region.base)
        end = base + UInt(region.byteCount)
    }
}

/// A `userswap_pin`: a pin and the mapping it counts against.
final class PinHandle {
    /// Set once at creation; cleared once by `release()`, by the one thread that removed the
    /// handle from its space's state (unpin or destroy), so never by two threads.
    var pin: Pin?
    let mapping: MappingHandle
    /// The space whose state holds this handle (and so outlives it).
    unowned let space: SpaceHandle

    init(pin: consuming Pin, mapping: MappingHandle, space: SpaceHandle) {
        self.pin = consume pin
        self.mapping = mapping
        self.space = space
    }

    func release() { pin = nil }
}

// Mutable only in `release()`, called by the one thread that removed the handle from the
// space's state under its mutex.
extension PinHandle: @unchecked Sendable {}

/// A `userswap_group`.
final class GroupHandle: Sendable {
    let group: MemoryGroup
    /// The space whose state holds this handle (and so outlives it): the owner of the group's
    /// limit (`SwapSpace.setMemoryLimit(_:of:)`).
    unowned let space: SpaceHandle

    init(group: MemoryGroup, space: SpaceHandle) {
        self.group = group
        self.space = space
    }

    static func from(_ pointer: OpaquePointer) -> GroupHandle {
        Unmanaged<GroupHandle>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
    }
}
