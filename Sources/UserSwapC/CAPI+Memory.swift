import CUserSwapAPI
import UserSwap

// Mappings, pins and advice: the memory part of include/userswap.h, whose comments are the
// contract of each function.

/// `userswap_map`
@_cdecl("userswap_map")
public func userswapMap(
    _ space: OpaquePointer?, _ length: Int, _ flags: UInt32,
    _ addr: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
) -> Int32 {
    userswapMapGroup(space, nil, length, flags, addr)
}

/// `userswap_map_group`
@_cdecl("userswap_map_group")
public func userswapMapGroup(
    _ space: OpaquePointer?, _ group: OpaquePointer?, _ length: Int, _ flags: UInt32,
    _ addr: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
) -> Int32 {
    guard let space, let addr else { return CError.fail(USERSWAP_EINVAL, "userswap_map: space and addr must not be NULL") }
    return CError.call { () throws(SwapError) in
        guard flags & ~UInt32(USERSWAP_MAP_FAULTING_THREAD) == 0 else {
            throw SwapError(.invalidArgument, "userswap_map: unknown flags \(flags & ~UInt32(USERSWAP_MAP_FAULTING_THREAD))")
        }
        let bytes = try checkedSize(length, "mapping length")
        let handle = SpaceHandle.from(space)
        let faults: TransparentRegion.FaultService =
            flags & UInt32(USERSWAP_MAP_FAULTING_THREAD) != 0
            ? .faultingThread : .handlerThreads(SpaceHandle.faultHandlerThreads)
        let region = try handle.space.makeTransparentRegion(
            bytes: bytes, group: group.map { GroupHandle.from($0).group },
            faults: faults)
        let mapping = MappingHandle(region: region)
        handle.state.withLock { state in
            let index = state.mappings.firstIndex { $0.base > mapping.base } ?? state.mappings.count
            state.mappings.insert(mapping, at: index)
        }
        addr.pointee = region.base
    }
}

/// `userswap_unmap`
@_cdecl("userswap_unmap")
public func userswapUnmap(_ space: OpaquePointer?, _ addr: UnsafeMutableRawPointer?) -> Int32 {
    guard let space, let addr else { return CError.fail(USERSWAP_EINVAL, "userswap_unmap: space and addr must not be NULL") }
    return CError.call { () throws(SwapError) in
        let base = UInt(bitPattern: addr)
        let removed: MappingHandle? = try SpaceHandle.from(space).state.withLock { state throws(SwapError) in
            guard let index = state.mappings.firstIndex(where: { $0.base == base }) else { return nil }
            // Relaxed: pins change only under this lock.
            let pins = state.mappings[index].pins.load(ordering: .relaxed)
            guard pins == 0 else {
                throw SwapError(.fileInUse, "userswap_unmap: \(pins) pages of the mapping at \(addr) are pinned; unpin them first")
            }
            return state.mappings.remove(at: index)
        }
        guard let removed else {
            throw SwapError(
                .invalidArgument,
                "userswap_unmap: \(addr) is not the address of a mapping of this space (made by userswap_map, not unmapped yet)")
        }
        // The region is released here, outside the lock: it frees its pages and swap.
        withExtendedLifetime(removed) {}
    }
}

/// `userswap_pin`
@_cdecl("userswap_pin")
public func userswapPin(
    _ space: OpaquePointer?, _ addr: UnsafeRawPointer?, _ writable: Int32,
    _ pin: UnsafeMutablePointer<OpaquePointer?>?,
    _ page: UnsafeMutablePointer<UnsafeMutableRawPointer?>?
) -> Int32 {
    guard let space, let addr, let pin, let page else {
        return CError.fail(USERSWAP_EINVAL, "userswap_pin: space, addr, pin and page must not be NULL")
    }
    return CError.call { () throws(SwapError) in
        let handle = SpaceHandle.from(space)
        let address = UInt(bitPattern: addr)
        // Count the pin first, under the lock, so that the mapping cannot be unmapped while its
        // page is being brought in; the swap-in itself runs outside the lock.
        let mapping: MappingHandle? = handle.state.withLock { state in
            guard let mapping = state.mapping(containing: address) else { return nil }
            // Relaxed: pins change only under this lock.
            mapping.pins.add(1, ordering: .relaxed)
            return mapping
        }
        guard let mapping else {
            throw SwapError(.invalidArgument, "userswap_pin: address \(addr) is not in a mapping of this space (made by userswap_map)")
        }
        let index = Int((address - mapping.base) >> UInt(SwapPage.shift))
        let made: Pin
        do throws(SwapError) {
            made = try mapping.region.pin(index, for: writable != 0 ? .write : .read)
        } catch {
            handle.state.withLock { _ in _ = mapping.pins.subtract(1, ordering: .relaxed) }  // Relaxed: pins change only under this lock
            throw error
        }
        page.pointee = made.bytes.baseAddress
        let box = PinHandle(pin: made, mapping: mapping, space: handle)
        handle.state.withLock { $0.pins[ObjectIdentifier(box)] = box }
        pin.pointee = OpaquePointer(Unmanaged.passUnretained(box).toOpaque())
    }
}

/// `userswap_unpin`
@_cdecl("userswap_unpin")
public func userswapUnpin(_ pin: OpaquePointer?) -> Int32 {
    guard let pin else { return 0 }
    let box = Unmanaged<PinHandle>.fromOpaque(UnsafeRawPointer(pin)).takeUnretainedValue()
    let removed = box.space.state.withLock { state in
        // Relaxed: pins change only under this lock.
        box.mapping.pins.subtract(1, ordering: .relaxed)
        return state.pins.removeValue(forKey: ObjectIdentifier(box))
    }
    removed?.release()
    return 0
}

/// `userswap_advise`
@_cdecl("userswap_advise")
public func userswapAdvise(_ space: OpaquePointer?, _ addr: UnsafeMutableRawPointer?, _ length: Int, _ advice: Int32) -> Int32 {
    guard let space, let addr else { return CError.fail(USERSWAP_EINVAL, "userswap_advise: space and addr must not be NULL") }
    return CError.call { () throws(SwapError) in
        let advices: [Int32: Region.Advice] = [
            Int32(USERSWAP_ADVICE_NORMAL.rawValue): .normal, Int32(USERSWAP_ADVICE_SEQUENTIAL.rawValue): .sequential,
            Int32(USERSWAP_ADVICE_RANDOM.rawValue): .random, Int32(USERSWAP_ADVICE_WILLNEED.rawValue): .willNeed,
            Int32(USERSWAP_ADVICE_DONTNEED.rawValue): .dontNeed,
        ]
        guard let chosen = advices[advice] else { throw SwapError(.invalidArgument, "userswap_advise: unknown advice \(advice)") }
        let (mapping, pages) = try SpaceHandle.from(space).pages(at: addr, length: try checkedSize(length, "length"))
        try mapping.region.advise(chosen, pages: pages)
    }
}

/// `userswap_prefetch`
@_cdecl("userswap_prefetch")
public func userswapPrefetch(_ space: OpaquePointer?, _ addr: UnsafeMutableRawPointer?, _ length: Int) -> Int32 {
    userswapAdvise(space, addr, length, Int32(USERSWAP_ADVICE_WILLNEED.rawValue))
}

/// `userswap_discard`
@_cdecl("userswap_discard")
public func userswapDiscard(_ space: OpaquePointer?, _ addr: UnsafeMutableRawPointer?, _ length: Int) -> Int32 {
    guard let space, let addr else { return CError.fail(USERSWAP_EINVAL, "userswap_discard: space and addr must not be NULL") }
    return CError.call { () throws(SwapError) in
        guard UInt(bitPattern: addr) % UInt(SwapPage.size) == 0, length % SwapPage.size == 0 else {
            throw SwapError(.invalidArgument, "userswap_discard: \(addr) and \(length) must be multiples of the page size (4096)")
        }
        let (mapping, pages) = try SpaceHandle.from(space).pages(at: addr, length: try checkedSize(length, "length"))
        try mapping.region.discard(pages: pages)
    }
}

extension SpaceHandle {
    /// Fault handler threads per mapping when they serve its faults: the library's default.
    static let faultHandlerThreads = 4
}
