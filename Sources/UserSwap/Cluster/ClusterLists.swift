/// The allocator's cluster lists of one device (kernel: `free_clusters`, `nonfull_clusters[]`,
/// `frag_clusters[]`, `full_clusters`, `discard_clusters`), as intrusive doubly linked lists
/// threaded through per-cluster index arrays.
///
/// Protected by the device lock. A cluster is on at most one list; its `SwapCluster.list` says
/// which (written with both the device lock and its cluster lock held).
struct ClusterLists: ~Copyable {
    typealias ID = UInt8

    static let free: ID = 0
    static let full: ID = 1
    static let discard: ID = 2
    /// Not on any list: a thread is scanning the cluster, or it is being discarded.
    static let isolated: ID = .max
    @inline(__always) static func nonfull(_ order: Int) -> ID { ID(3 + order) }
    @inline(__always) static func frag(_ order: Int) -> ID { ID(3 + SwapCluster.orderCount + order) }
    static let count = 3 + 2 * SwapCluster.orderCount

    private static let none: Int32 = -1

    private var first: [Int32]
    private var last: [Int32]
    /// Lengths per list, for statistics and invariant checks.
    private(set) var lengths: [Int]
    private var next: [Int32]
    private var prev: [Int32]

    init(clusterCount: Int) {
        first = Array(repeating: Self.none, count: Self.count)
        last = Array(repeating: Self.none, count: Self.count)
        lengths = Array(repeating: 0, count: Self.count)
        next = Array(repeating: Self.none, count: clusterCount)
        prev = Array(repeating: Self.none, count: clusterCount)
    }

    /// Appends cluster `c` (on no list) to `list`.
    mutating func append(_ c: Int, to list: ID) {
        let l = Int(list)
        let tail = last[l]
        prev[c] = tail
        next[c] = Self.none
        if tail == Self.none { first[l] = Int32(c) } else { next[Int(tail)] = Int32(c) }
        last[l] = Int32(c)
        lengths[l] += 1
    }

    /// Unlinks cluster `c` from `list`, which it must be on.
    mutating func remove(_ c: Int, from list: ID) {
        let l = Int(list)
        let p = prev[c], n = next[c]
        if p == Self.none { first[l] = n } else { next[Int(p)] = n }
        if n == Self.none { last[l] = p } else { prev[Int(n)] = p }
        prev[c] = Self.none
        next[c] = Self.none
        lengths[l] -= 1
    }

    /// The first cluster of `list`, if any.
    @inline(__always)
    func head(_ list: ID) -> Int? {
        let f = first[Int(list)]
        return f == Self.none ? nil : Int(f)
    }

    /// The cluster after `c` on its list.
    @inline(__always)
    func successor(of c: Int) -> Int? {
        let n = next[c]
        return n == Self.none ? nil : Int(n)
    }

    func length(_ list: ID) -> Int { lengths[Int(list)] }

    /// Every cluster on `list`, in order (for invariant checks and statistics).
    func members(_ list: ID) -> [Int] {
        var out: [Int] = []
        var c = head(list)
        while let x = c {
            out.append(x)
            c = successor(of: x)
        }
        return out
    }

    static func name(_ list: ID) -> String {
        switch list {
        case free: "free"
        case full: "full"
        case discard: "discard"
        case isolated: "isolated"
        case let id where Int(id) < 3 + SwapCluster.orderCount: "nonfull[\(Int(id) - 3)]"
        default: "frag[\(Int(list) - 3 - SwapCluster.orderCount)]"
        }
    }
}
