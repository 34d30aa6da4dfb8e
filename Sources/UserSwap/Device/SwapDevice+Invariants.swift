import Synchronization

/// The device half of the invariant walker (docs/RELIABILITY.md), for one-word slots: cluster
/// counts, list membership and free slots. Meant for a quiet device (tests call it after their threads joined); on a busy device
/// it is still memory-safe but may report transient mismatches between clusters.
extension SwapDevice {
    /// Returns a description of every broken invariant (empty when all hold).
    public func checkInvariants() -> [String] {
        var problems: [String] = []
        var usedTotal = 0
        var badTotal = 0
        var listOf = [ClusterLists.ID](repeating: ClusterLists.isolated, count: clusterCount)
        /// Cluster `c`'s slots against its count, list and table. Caller holds its cluster lock.
        func walkCluster(_ c: Int) {
            let ci = clusters.cluster(c).pointee
            var used = 0
            for i in 0..<SwapCluster.slotCount {
                let s = clusters.loadSlot(c, i)
                if s.isFree { continue }
                used += 1
                if s.isBad {
                    badTotal += 1
                    continue
                }
                if s.isShadow && s.count == 0 {
                    problems.append("cluster \(c) slot \(i): shadow with count 0 (a free slot must be empty)")
                }
                if s.tag == .none && s.count == 0 && !s.hasCache {
                    problems.append("cluster \(c) slot \(i): used word \(s) holds nothing")
                }
            }
            usedTotal += used
            if used != Int(ci.count) {
                problems.append("cluster \(c): count \(ci.count) but \(used) used slots")
            }
            if !ci.hasTable && used != 0 {
                problems.append("cluster \(c): no table but \(used) used slots")
            }
            if ci.isEmpty && ci.list != ClusterLists.free && ci.list != ClusterLists.discard {
                problems.append("cluster \(c): empty but on \(ClusterLists.name(ci.list))")
            }
            if ci.isEmpty && ci.hasTable {
                problems.append("cluster \(c): empty but still holds its table")
            }
            if ci.isFull && ci.list != ClusterLists.full {
                problems.append("cluster \(c): full but on \(ClusterLists.name(ci.list))")
            }
            if !ci.isEmpty && !ci.isFull {
                let order = Int(ci.order)
                if ci.list != ClusterLists.nonfull(order) && ci.list != ClusterLists.frag(order) {
                    problems.append("cluster \(c): partly used, order \(order), but on \(ClusterLists.name(ci.list))")
                }
            }
            listOf[c] = ci.list
        }
        #if DEBUG
        if walkerSkipsClusterLock.load(ordering: .relaxed) {  // Relaxed: a test switch, set before the walk starts
            // The planted bug: the clusters read under the device lock, which does not protect
            // their counts, instead of each one's cluster lock.
            lists.withLock { _ in
                for c in 0..<clusterCount { walkCluster(c) }
            }
        } else {
            for c in 0..<clusterCount {
                let g = clusters.lock(c)
                walkCluster(c)
                g.unlock()
            }
        }
        #else
        for c in 0..<clusterCount {
            let g = clusters.lock(c)
            walkCluster(c)
            g.unlock()
        }
        #endif
        lists.withLock { l in
            var seen = [Bool](repeating: false, count: clusterCount)
            for id in 0..<ClusterLists.count {
                let members = l.members(ClusterLists.ID(id))
                if members.count != l.length(ClusterLists.ID(id)) {
                    problems.append(
                        "list \(ClusterLists.name(ClusterLists.ID(id))): length \(l.length(ClusterLists.ID(id))) but \(members.count) members"
                    )
                }
                for c in members {
                    if seen[c] { problems.append("cluster \(c) is on two lists") }
                    seen[c] = true
                    if listOf[c] != ClusterLists.ID(id) {
                        problems.append(
                            "cluster \(c) is on \(ClusterLists.name(ClusterLists.ID(id))) but says \(ClusterLists.name(listOf[c]))")
                    }
                }
            }
            for c in 0..<clusterCount where !seen[c] {
                problems.append("cluster \(c) is on no list (says \(ClusterLists.name(listOf[c])))")
            }
        }
        if badTotal != badSlots {
            problems.append("\(badTotal) bad slots, expected \(badSlots)")
        }
        let inuse = inusePages.load(ordering: .acquiring)
        if inuse != usedTotal - badTotal {
            problems.append("inusePages \(inuse) but clusters count \(usedTotal - badTotal) used data slots")
        }
        return problems
    }

    /// Clusters per list, for reports.
    public var clusterListLengths: [String: Int] {
        lists.withLock { l in
            var out: [String: Int] = [:]
            for id in 0..<ClusterLists.count where l.length(ClusterLists.ID(id)) > 0 {
                out[ClusterLists.name(ClusterLists.ID(id))] = l.length(ClusterLists.ID(id))
            }
            return out
        }
    }
}
