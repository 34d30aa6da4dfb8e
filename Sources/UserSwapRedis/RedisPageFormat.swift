import UserSwap

/// How a page is stored in Redis: its key, and the value's layout (the page, then a trailer that
/// lets a read prove the value is the one this device wrote for this page).
///
/// **Keys.** `{<namespace>/<group>}<slot>`, with `group = page / 512` and `slot = page % 512`:
/// one key group per engine swap cluster (`SwapCluster.slotCount`, 512 pages, 2 MiB). The braces
/// are a Redis Cluster hash tag, so every page of one swap cluster hashes to the same cluster
/// slot, and therefore to one node: the multi-key commands a vectored transfer sends (MGET, MSET,
/// UNLINK), which never leave one key group, are legal in cluster mode, while different swap
/// clusters spread over the nodes. Every key of a device starts with `{<namespace>/`, which is
/// what `removeAllPages()` scans for.
///
/// **Values.** 4096 bytes of page, then a 32-byte trailer, little-endian:
///
/// ```
///  0        4          8                   16                  24                  32
///  +--------+----------+-------------------+-------------------+-------------------+
///  | magic  | version  | device instance   | page offset       | checksum          |
///  +--------+----------+-------------------+-------------------+-------------------+
/// ```
///
/// - *magic* `USRP` and *version* 1: the value is a UserSwap page in this format.
/// - *device instance*: a random number drawn when the backend is created. A value written by
///   another backend, an earlier run with the same namespace on a server that persisted its data,
///   or a second process misconfigured onto our namespace, carries another number and is refused
///   as stale instead of being returned as our page.
/// - *page offset*: catches a value stored under the wrong key. Its low 40 bits are the page,
///   its high 24 bits the page's *write generation*: 0 on a single server; on a cluster
///   (`RedisClusterBackend`) a counter per page, bumped by every write and kept in our memory,
///   so that an older value of the page (one a replica still held when its master died before
///   passing on the newer one) is refused as lost instead of returned as the page.
/// - *checksum*: a 64-bit multiply-rotate hash of the page (four independent lanes, so it costs
///   ~0.3 µs per page, well under a round trip), seeded with instance and offset; it catches a
///   value changed behind our back (`SETRANGE`, a buggy proxy).
///
/// What it does not catch: a forged value. The trailer is unkeyed, so whoever can read a value
/// can write another with a valid trailer; it is there for accidents. Authenticity comes from the
/// space's encryption (on by default): the page is ciphertext and its AEAD tag stays in our
/// memory, under a key the server never sees, so a forged or replayed value fails
/// authentication above this backend. Nor does the trailer catch an older value this same
/// instance wrote for the same page on a single server,
/// where it would need a lost write without a lost server: the engine never reads a slot's
/// previous contents (the swap table says what is current), and a freed slot's key is deleted
/// before the slot can be written again (see `RedisDeletionQueue`). On a cluster, where a
/// failover can bring back an older value, the write generation catches it (4 bytes per page of
/// memory; it wraps after 2²⁴ writes of one page, far beyond any replication lag).
///
/// The trailer costs nothing in server memory: a 4096-byte string already takes jemalloc's
/// 5120-byte size class (its header pushes it past 4096), and 4128 bytes fit the same class.
struct RedisPageFormat: Sendable {
    static let pageSize = SwapPage.size
    static let trailerSize = 32
    static let valueSize = pageSize + trailerSize
    /// Pages per key group: the engine's swap cluster (`SwapCluster.slotCount`, internal to the
    /// engine, so repeated here; a different value would only cost cluster-mode locality).
    static let groupPages = 512
    static let magic: UInt32 = 0x5052_5355  // "USRP" little-endian
    static let version: UInt32 = 1
    /// Bits of the page-offset field that hold the page; the rest hold the write generation.
    static let pageBits = 40
    /// Pages a device in this format may have.
    static let maxPages = 1 << pageBits
    /// Write generations wrap at this.
    static let generationLimit: UInt32 = 1 << 24

    let namespace: String
    let instance: UInt64
    /// `{<namespace>/`, the bytes every key starts with.
    let prefix: [UInt8]

    /// Characters a namespace may use: no glob characters (the SCAN pattern is built from it), no
    /// braces (they would move the hash tag), no spaces.
    static func isValidNamespace(_ namespace: String) -> Bool {
        !namespace.isEmpty && namespace.utf8.count <= 100
            && namespace.utf8.allSatisfy { c in
                (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
                    || c == UInt8(ascii: "-") || c == UInt8(ascii: "_") || c == UInt8(ascii: ".") || c == UInt8(ascii: ":")
            }
    }

    init(namespace: String, instance: UInt64) {
        require(Self.isValidNamespace(namespace), "namespace '\(namespace)' was not validated")
        self.namespace = namespace
        self.instance = instance
        prefix = Array("{\(namespace)/".utf8)
    }

    /// The key group (hash tag) of `page`.
    static func group(of page: Int) -> Int { page / groupPages }

    /// The key of `page`, appended to `bytes`.
    func appendKey(of page: Int, to bytes: inout [UInt8]) {
        bytes.append(contentsOf: prefix)
        Self.appendDecimal(page / Self.groupPages, to: &bytes)
        bytes.append(UInt8(ascii: "}"))
        Self.appendDecimal(page % Self.groupPages, to: &bytes)
    }

    /// The key of `page` as text (messages, tests).
    func key(of page: Int) -> String {
        var bytes: [UInt8] = []
        appendKey(of: page, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The SCAN pattern matching every key of this namespace.
    var scanPattern: String { "{\(namespace)/*" }

    /// Decimal digits of `value` (a small string: no allocation).
    private static func appendDecimal(_ value: Int, to bytes: inout [UInt8]) {
        bytes.append(contentsOf: String(value).utf8)
    }

    // MARK: Values

    /// The page-offset field of `page` written with `generation`.
    static func offsetField(page: Int, generation: UInt32) -> UInt64 {
        require(
            page >= 0 && page < maxPages && generation < generationLimit,
            "page \(page) (generation \(generation)) outside 0..<\(maxPages) (generations below \(generationLimit))")
        return UInt64(page) | UInt64(generation) << UInt64(pageBits)
    }

    /// Writes the value of `page` into `value` (`valueSize` bytes): the page's bytes, then the
    /// trailer. `generation` is the page's write generation (0 on a single server).
    func encode(page: Int, generation: UInt32 = 0, from source: UnsafeRawPointer, into value: UnsafeMutableRawPointer) {
        value.copyMemory(from: source, byteCount: Self.pageSize)
        let t = value + Self.pageSize
        t.storeBytes(of: Self.magic.littleEndian, toByteOffset: 0, as: UInt32.self)
        t.storeBytes(of: Self.version.littleEndian, toByteOffset: 4, as: UInt32.self)
        t.storeBytes(of: instance.littleEndian, toByteOffset: 8, as: UInt64.self)
        t.storeBytes(of: Self.offsetField(page: page, generation: generation).littleEndian, toByteOffset: 16, as: UInt64.self)
        t.storeBytes(of: checksum(page: page, UnsafeRawPointer(value)).littleEndian, toByteOffset: 24, as: UInt64.self)
    }

    /// Checks that `value` is what this device wrote for `page` (its latest write, generation
    /// `generation`) and copies the page out of it; otherwise says what is wrong with it (and
    /// copies nothing).
    func decode(page: Int, generation: UInt32 = 0, value: UnsafeRawBufferPointer, into destination: UnsafeMutableRawPointer) -> String? {
        switch check(page: page, generation: generation, value: value, into: destination) {
        case .intact: nil
        case .olderWrite(let problem), .invalid(let problem): problem
        }
    }

    /// What `check` found in a value.
    enum Check: Equatable {
        /// The page's latest write: copied out.
        case intact
        /// The page, but an older write of it: the latest write is lost.
        case olderWrite(String)
        /// Not a value this device wrote for the page (wrong size, format, instance, page or
        /// checksum).
        case invalid(String)
    }

    /// `decode`, telling an older write of the page from a value that is not the page at all.
    func check(page: Int, generation: UInt32 = 0, value: UnsafeRawBufferPointer, into destination: UnsafeMutableRawPointer) -> Check {
        guard value.count == Self.valueSize, let v = value.baseAddress else {
            return .invalid("its value is \(value.count) bytes, not the \(Self.valueSize) of a UserSwap page: something else wrote the key")
        }
        let t = v + Self.pageSize
        let magic = UInt32(littleEndian: t.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
        let version = UInt32(littleEndian: t.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        guard magic == Self.magic, version == Self.version else {
            return .invalid("its value is not a UserSwap page (magic \(hex(UInt64(magic))), version \(version))")
        }
        let instance = UInt64(littleEndian: t.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        guard instance == self.instance else {
            return .invalid(
                "its value is stale: written by another device instance (\(hex(instance)), this one is \(hex(self.instance))), an earlier run or another process using namespace '\(namespace)'"
            )
        }
        let field = UInt64(littleEndian: t.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
        let stored = field & (UInt64(Self.maxPages) - 1)
        guard stored == UInt64(page) else {
            return .invalid("its value holds page \(stored), not page \(page)")
        }
        let storedGeneration = UInt32(field >> UInt64(Self.pageBits))
        guard storedGeneration == generation else {
            return .olderWrite(
                "its value is an older write of the page (write \(storedGeneration), the latest is \(generation)): the node that answered lost the latest write (a failover to a replica that had not received it)"
            )
        }
        let sum = UInt64(littleEndian: t.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
        guard sum == checksum(page: page, v) else {
            return .invalid("its value fails the page checksum: it was changed after it was written")
        }
        destination.copyMemory(from: v, byteCount: Self.pageSize)
        return .intact
    }

    /// The page checksum: four lanes of `acc = rotl(acc + w·P2, 31)·P1` over the page's 512
    /// words (xxHash64's round, not its exact output), merged and avalanched.
    func checksum(page: Int, _ bytes: UnsafeRawPointer) -> UInt64 {
        let p1: UInt64 = 0x9E37_79B1_85EB_CA87
        let p2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
        let seed = instance ^ (UInt64(page) &* p1)
        var a0 = seed &+ p1 &+ p2, a1 = seed &+ p2, a2 = seed, a3 = seed &- p1
        @inline(__always) func round(_ acc: UInt64, _ w: UInt64) -> UInt64 {
            let x = acc &+ w &* p2
            return ((x << 31) | (x >> 33)) &* p1
        }
        var offset = 0
        while offset < Self.pageSize {
            a0 = round(a0, bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            a1 = round(a1, bytes.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self))
            a2 = round(a2, bytes.loadUnaligned(fromByteOffset: offset + 16, as: UInt64.self))
            a3 = round(a3, bytes.loadUnaligned(fromByteOffset: offset + 24, as: UInt64.self))
            offset += 32
        }
        var h = ((a0 << 1) | (a0 >> 63)) &+ ((a1 << 7) | (a1 >> 57)) &+ ((a2 << 12) | (a2 >> 52)) &+ ((a3 << 18) | (a3 >> 46))
        h ^= h >> 33
        h = h &* p2
        h ^= h >> 29
        h = h &* 0x1656_67B1_9E37_79F9
        return h ^ (h >> 32)
    }

    private func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }
}
