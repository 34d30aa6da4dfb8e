import CUserSwapAPI
import UserSwap

// Memory groups: the last part of include/userswap.h, whose comments are the contract of each
// function.

/// `userswap_group_create`
@_cdecl("userswap_group_create")
public func userswapGroupCreate(
    _ space: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ memoryLimit: UInt64,
    _ swapLimit: UInt64, _ parent: OpaquePointer?,
    _ group: UnsafeMutablePointer<OpaquePointer?>?
) -> Int32 {
    guard let space, let name, let group else {
        return CError.fail(USERSWAP_EINVAL, "userswap_group_create: space, name and group must not be NULL")
    }
    return CError.call { () throws(SwapError) in
        let handle = SpaceHandle.from(space)
        let made = try handle.space.makeGroup(
            name: String(cString: name), memoryLimit: limit(memoryLimit),
            swapLimit: limit(swapLimit), parent: parent.map { GroupHandle.from($0).group })
        let box = GroupHandle(group: made, space: handle)
        handle.state.withLock { $0.groups.append(box) }
        group.pointee = OpaquePointer(Unmanaged.passUnretained(box).toOpaque())
    }
}

/// `userswap_group_set_limits`
@_cdecl("userswap_group_set_limits")
public func userswapGroupSetLimits(_ group: OpaquePointer?, _ memoryLimit: UInt64, _ swapLimit: UInt64) -> Int32 {
    guard let group else { return CError.fail(USERSWAP_EINVAL, "userswap_group_set_limits: group is NULL") }
    let handle = GroupHandle.from(group)
    // The swap limit first: the reclaim a lowered memory limit starts must see the new one.
    handle.group.swapLimit = limit(swapLimit)
    return CError.call { () throws(SwapError) in
        try handle.space.space.setMemoryLimit(limit(memoryLimit), of: handle.group)
    }
}

/// `userswap_group_stats_get`
@_cdecl("userswap_group_stats_get")
public func userswapGroupStatsGet(_ group: OpaquePointer?, _ stats: UnsafeMutablePointer<userswap_group_stats>?) -> Int32 {
    guard let group, let stats else {
        return CError.fail(USERSWAP_EINVAL, "userswap_group_stats_get: group and stats must not be NULL")
    }
    let size = stats.pointee.size
    guard size >= MemoryLayout<userswap_group_stats>.offset(of: \.memory_peak)! else {
        return CError.fail(USERSWAP_EINVAL, "userswap_group_stats_get: stats->size is \(size); set it to sizeof(userswap_group_stats)")
    }
    let g = GroupHandle.from(group).group
    var full = userswap_group_stats(
        size: size, memory: UInt64(g.memoryUsage), memory_peak: UInt64(g.memoryPeak),
        memory_limit: g.memoryLimit.map(UInt64.init) ?? UInt64.max,
        swap: UInt64(g.swapUsage), swap_peak: UInt64(g.swapPeak),
        swap_limit: g.swapLimit.map(UInt64.init) ?? UInt64.max,
        swap_ins: UInt64(g[.pswpin]), swap_outs: UInt64(g[.pswpout]))
    withUnsafeBytes(of: &full) { bytes in
        UnsafeMutableRawPointer(stats).copyMemory(from: bytes.baseAddress!, byteCount: min(size, bytes.count))
    }
    return 0
}

/// A C limit as the engine's: nil for `USERSWAP_UNLIMITED` (`UINT64_MAX`, a macro Swift does not
/// import) or anything past `Int.max`.
private func limit(_ bytes: UInt64) -> Int? {
    bytes >= UInt64(Int.max) ? nil : Int(bytes)
}
