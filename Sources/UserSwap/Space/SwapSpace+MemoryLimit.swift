/// Changing a memory group's limit (kernel: writing `memory.max`).
extension SwapSpace {
    /// Sets `group`'s memory limit to `bytes` (nil: no limit). When the group holds more than
    /// that, the excess — its own pages and those of the groups nested in it — is swapped out
    /// before this returns, as writing the kernel's `memory.max` reclaims at once; a limit at or
    /// above the usage swaps nothing out.
    ///
    /// Throws when the group cannot be brought under the limit: ``SwapError/Code/outOfMemory``
    /// when what stays is pinned (the caller's own pins count too) or a swap limit is reached,
    /// ``SwapError/Code/swapFull`` when swap is full, the write's error when swapping out
    /// failed. The message says how many bytes stay above the limit. The new limit is set even
    /// then (the kernel likewise keeps `memory.max` written): the group's next allocations
    /// reclaim again, and fail while nothing more can go. Throws
    /// ``SwapError/Code/invalidArgument``, changing nothing, for a negative limit or a group of
    /// another space.
    public func setMemoryLimit(_ bytes: Int?, of group: MemoryGroup) throws(SwapError) {
        guard engine.groups.ifPresent(group.id) === group else {
            throw SwapError(.invalidArgument, "memory group \(group.name) belongs to another space; set its limit through that space")
        }
        if let bytes, bytes < 0 {
            throw SwapError(.invalidArgument, "a memory limit of \(bytes) bytes is negative; give 0 or more, or nil for no limit")
        }
        try engine.allocator.setMemoryLimit(bytes, of: group)
    }
}
