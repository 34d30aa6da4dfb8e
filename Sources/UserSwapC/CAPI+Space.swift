import CUserSwapAPI
import Glibc
import UserSwap
import UserSwapRedis

// Spaces, devices and statistics: the first part of include/userswap.h, whose comments are the
// contract of each function.

/// `userswap_version`
@_cdecl("userswap_version")
public func userswapVersion() -> UInt32 {
    UInt32(USERSWAP_VERSION_MAJOR << 16 | USERSWAP_VERSION_MINOR)
}

/// `userswap_strerror`
@_cdecl("userswap_strerror")
public func userswapStrerror(_ code: Int32) -> UnsafePointer<CChar> {
    code >= 0 && Int(code) < CError.names.count ? CError.names[Int(code)] : CError.unknown
}

/// `userswap_last_error`
@_cdecl("userswap_last_error")
public func userswapLastError() -> UnsafePointer<CChar> {
    LastError.message
}

/// `userswap_config_init`
@_cdecl("userswap_config_init")
public func userswapConfigInit(_ config: UnsafeMutablePointer<userswap_config>?) -> Int32 {
    guard let config else { return CError.fail(USERSWAP_EINVAL, "userswap_config_init: config is NULL") }
    config.pointee = userswap_config(
        size: MemoryLayout<userswap_config>.size, memory: 256 << 20, flags: 0,
        reserved: 0, swap_dir: nil, swap_size: 0)
    return 0
}

/// `userswap_space_create`
@_cdecl("userswap_space_create")
public func userswapSpaceCreate(
    _ config: UnsafePointer<userswap_config>?,
    _ space: UnsafeMutablePointer<OpaquePointer?>?
) -> Int32 {
    guard let config, let space else {
        return CError.fail(USERSWAP_EINVAL, "userswap_space_create: config and space must not be NULL")
    }
    return CError.call { () throws(SwapError) in
        let made = try SpaceHandle.make(config.pointee)
        space.pointee = OpaquePointer(Unmanaged.passRetained(made).toOpaque())
    }
}

/// `userswap_space_from_env`
@_cdecl("userswap_space_from_env")
public func userswapSpaceFromEnv(_ space: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guard let space else { return CError.fail(USERSWAP_EINVAL, "userswap_space_from_env: space is NULL") }
    let settings: EnvironmentSettings
    switch EnvironmentSettings.parse(EnvironmentSettings.current()) {
    case .success(let parsed): settings = parsed
    case .failure(let error): return CError.fail(USERSWAP_EENV, error.message)
    }
    return CError.call { () throws(SwapError) in
        let made = try SpaceHandle.make(
            memory: settings.memory, flags: settings.flags,
            swapDirectory: settings.swapDirectory, swapSize: settings.temporarySwapSize)
        if let path = settings.swapFile {
            try made.space.addDevice(.file(path: path, size: settings.swapSize == 0 ? nil : Int64(settings.swapSize)))
        }
        if let url = settings.redisURL {
            try made.addRedisDevice(url: url, bytes: settings.swapSize, priority: 0)
        }
        space.pointee = OpaquePointer(Unmanaged.passRetained(made).toOpaque())
    }
}

/// `userswap_space_destroy`
@_cdecl("userswap_space_destroy")
public func userswapSpaceDestroy(_ space: OpaquePointer?) -> Int32 {
    guard let space else { return 0 }
    let handle = Unmanaged<SpaceHandle>.fromOpaque(UnsafeRawPointer(space))
    handle.takeUnretainedValue().releaseAll()
    handle.release()
    return 0
}

/// `userswap_add_file_device`
@_cdecl("userswap_add_file_device")
public func userswapAddFileDevice(
    _ space: OpaquePointer?, _ path: UnsafePointer<CChar>?, _ size: Int,
    _ priority: Int32
) -> Int32 {
    guard let space, let path else {
        return CError.fail(USERSWAP_EINVAL, "userswap_add_file_device: space and path must not be NULL")
    }
    return CError.call { () throws(SwapError) in
        let bytes = try checkedSize(size, "swap file size")
        try SpaceHandle.from(space).space.addDevice(
            .file(
                path: String(cString: path), size: bytes == 0 ? nil : Int64(bytes),
                priority: Int(priority)))
    }
}

/// `userswap_add_temporary_device`
@_cdecl("userswap_add_temporary_device")
public func userswapAddTemporaryDevice(
    _ space: OpaquePointer?, _ directory: UnsafePointer<CChar>?, _ size: Int,
    _ priority: Int32
) -> Int32 {
    guard let space else { return CError.fail(USERSWAP_EINVAL, "userswap_add_temporary_device: space is NULL") }
    return CError.call { () throws(SwapError) in
        let bytes = try checkedSize(size, "swap file size")
        try SpaceHandle.from(space).space.addDevice(
            .temporary(
                size: Int64(bytes), directory: directory.map { String(cString: $0) },
                priority: Int(priority)))
    }
}

/// `userswap_add_redis_device`
@_cdecl("userswap_add_redis_device")
public func userswapAddRedisDevice(
    _ space: OpaquePointer?, _ url: UnsafePointer<CChar>?, _ size: Int,
    _ priority: Int32
) -> Int32 {
    guard let space, let url else {
        return CError.fail(USERSWAP_EINVAL, "userswap_add_redis_device: space and url must not be NULL")
    }
    return CError.call { () throws(SwapError) in
        try SpaceHandle.from(space).addRedisDevice(
            url: String(cString: url), bytes: try checkedSize(size, "Redis device size"),
            priority: Int(priority))
    }
}

/// `userswap_stats_get`
@_cdecl("userswap_stats_get")
public func userswapStatsGet(_ space: OpaquePointer?, _ stats: UnsafeMutablePointer<userswap_stats>?) -> Int32 {
    guard let space, let stats else { return CError.fail(USERSWAP_EINVAL, "userswap_stats_get: space and stats must not be NULL") }
    let header = MemoryLayout<userswap_stats>.offset(of: \.memory)!
    let size = stats.pointee.size
    guard size >= header else {
        return CError.fail(USERSWAP_EINVAL, "userswap_stats_get: stats->size is \(size); set it to sizeof(userswap_stats)")
    }
    var full = SpaceHandle.from(space).statistics()
    full.size = size
    withUnsafeBytes(of: &full) { bytes in
        UnsafeMutableRawPointer(stats).copyMemory(from: bytes.baseAddress!, byteCount: min(size, bytes.count))
    }
    return 0
}

/// `size` as an `Int` the engine takes: sizes over `Int.max` (a negative number converted to
/// `size_t` by mistake) are refused.
func checkedSize(_ size: Int, _ what: String) throws(SwapError) -> Int {
    guard size >= 0 else { throw SwapError(.invalidArgument, "\(what) \(UInt(bitPattern: size)) is too large") }
    return size
}

extension SpaceHandle {
    /// A space made as a C configuration says.
    static func make(_ config: userswap_config) throws(SwapError) -> SpaceHandle {
        guard config.size == MemoryLayout<userswap_config>.size else {
            throw SwapError(
                .invalidArgument,
                "userswap_config.size is \(config.size), not \(MemoryLayout<userswap_config>.size): fill the struct with userswap_config_init, and build against this library's userswap.h"
            )
        }
        let known = UInt32(USERSWAP_SPACE_NO_ENCRYPTION | USERSWAP_SPACE_NO_BACKGROUND_RECLAIM)
        guard config.flags & ~known == 0 else {
            throw SwapError(.invalidArgument, "userswap_config.flags has unknown bits \(config.flags & ~known)")
        }
        return try make(
            memory: try checkedSize(config.memory, "memory budget"), flags: config.flags,
            swapDirectory: config.swap_dir.map { String(cString: $0) },
            swapSize: try checkedSize(config.swap_size, "swap size"))
    }

    /// A space of `memory` bytes of RAM with `USERSWAP_SPACE_*` `flags`, and an unnamed swap
    /// file of `swapSize` bytes in `swapDirectory` unless `swapSize` is 0.
    static func make(memory: Int, flags: UInt32, swapDirectory: String?, swapSize: Int) throws(SwapError) -> SpaceHandle {
        var devices: [SwapSpace.DeviceConfiguration] = []
        if swapSize > 0 {
            devices.append(.temporary(size: Int64(swapSize), directory: swapDirectory))
        }
        let space = try SwapSpace(
            .init(
                memory: memory, devices: devices,
                backgroundReclaim: flags & UInt32(USERSWAP_SPACE_NO_BACKGROUND_RECLAIM) == 0,
                encryption: flags & UInt32(USERSWAP_SPACE_NO_ENCRYPTION) != 0 ? .none : .randomKey))
        return SpaceHandle(space: space)
    }

    /// Adds `bytes` of swap on the Redis server at `url`.
    func addRedisDevice(url: String, bytes: Int, priority: Int) throws(SwapError) {
        var environment: [String: String] = [:]
        let passwordVariable = RedisBackend.Configuration.passwordEnvironmentVariable
        if let password = getenv(passwordVariable) { environment[passwordVariable] = String(cString: password) }
        let configuration = try RedisBackend.Configuration(url: url, environment: environment)
        let backend = try RedisBackend(pageCount: bytes / SwapPage.size, configuration: configuration)
        try space.addDevice(.backend(backend, priority: priority))
    }

    /// The space's counters, as the C struct.
    func statistics() -> userswap_stats {
        let s = space.statistics
        let page = UInt64(SwapPage.size)
        let devices = space.devices
        func count(_ c: SwapStatistics.Counter) -> UInt64 { UInt64(s[c]) }
        return userswap_stats(
            size: MemoryLayout<userswap_stats>.size, version: USERSWAP_STATS_VERSION, reserved: 0,
            memory: UInt64(space.frameCount) * page, resident: UInt64(space.residentFrames) * page,
            swap_total: UInt64(devices.reduce(0) { $0 + $1.usablePages }) * page,
            swap_used: UInt64(devices.reduce(0) { $0 + $1.usedPages }) * page,
            swap_ins: count(.swapIns), swap_outs: count(.swapOuts),
            major_faults: count(.majorFaults), minor_faults: count(.minorFaults),
            write_faults: count(.writeProtectFaults), fault_errors: count(.faultErrors),
            readahead_pages: count(.readaheadPages), readahead_hits: count(.readaheadHits),
            reclaim_scanned: count(.reclaimScanned), reclaim_freed: count(.reclaimFreed),
            io_errors: count(.readErrors) + count(.writeErrors),
            fault_waits: count(.faultWaits), fault_wait_ns: count(.faultWaitNanoseconds),
            fault_wait_p99_ns: UInt64(s.faultWaitTimes.percentileNanoseconds(0.99)),
            late_faults: count(.lateFaults))
    }

    /// Drops every pin and mapping (pins first: a mapping's release waits for its pinned pages).
    func releaseAll() {
        let (pins, mappings) = state.withLock { state in
            let taken = (Array(state.pins.values), state.mappings)
            state.pins = [:]
            state.mappings = []
            return taken
        }
        for pin in pins { pin.release() }
        withExtendedLifetime(mappings) {}
    }
}
