import Glibc

/// How many of the pages that hold `bytes` from `start` are resident (`mincore`), of how many.
func residentPages(_ start: UnsafeRawPointer, bytes: Int) -> (resident: Int, pages: Int) {
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    let first = Int(bitPattern: start) & ~(page - 1)
    let end = (Int(bitPattern: start) + bytes + page - 1) & ~(page - 1)
    let pages = (end - first) / page
    var vector = [UInt8](repeating: 0, count: pages)
    let result = mincore(UnsafeMutableRawPointer(bitPattern: first), end - first, &vector)
    precondition(result == 0, "mincore failed: errno \(errno)")
    return (vector.filter { $0 & 1 != 0 }.count, pages)
}

/// Leaves glibc's heap as a long-running process's is: its mmap threshold raised past `bytes`
/// (it follows the largest mapped block freed, up to 32 MiB) and that much written memory free
/// at the top of a heap. A `calloc` of `bytes` then takes that memory and writes every byte,
/// where a fresh mapping would have left its pages untouched.
func dirtyMallocHeap(past bytes: Int) {
    let size = bytes + (1 << 20)
    free(malloc(size))
    guard let block = malloc(size) else { preconditionFailure("malloc of \(size) bytes failed") }
    memset(block, 1, size)
    free(block)
}
