import Glibc

/// Does the transfer a request slot describes by calling the backend, in whatever thread runs
/// it: a pool worker, the io_uring completion thread redoing a short transfer, or a caller that
/// found no free slot. Records the outcome in the slot; does not complete it.
enum IOTransfer {
    /// The most buffers a request has; sized like `IORequestTable.maxVectors`.
    typealias Scratch = UnsafeMutablePointer<UnsafeMutableRawBufferPointer>

    static func makeScratch() -> Scratch {
        let s = Scratch.allocate(capacity: IORequestTable.maxVectors)
        s.initialize(repeating: UnsafeMutableRawBufferPointer(start: nil, count: 0), count: IORequestTable.maxVectors)
        return s
    }

    /// Runs the request in `slot` against `backend`; `scratch` holds the buffer list.
    static func perform(_ slot: Int, table: IORequestTable, backend: any SwapBackend, scratch: Scratch) {
        let r = table.request(slot)
        let v = table.vectors(slot)
        let n = r.pointee.vectorCount
        for i in 0..<n { scratch[i] = UnsafeMutableRawBufferPointer(start: v[i].iov_base, count: v[i].iov_len) }
        let page = r.pointee.page
        do throws(SwapError) {
            if r.pointee.write {
                if n == 1 {
                    try backend.write(UnsafeRawBufferPointer(scratch[0]), atPage: page)
                } else {
                    // Sound: UnsafeRawBufferPointer and its mutable twin have the same layout.
                    let raw = UnsafeRawPointer(scratch).assumingMemoryBound(to: UnsafeRawBufferPointer.self)
                    try backend.write(UnsafeBufferPointer(start: raw, count: n), atPage: page)
                }
            } else if n == 1 {
                r.pointee.consumed = try backend.readConsuming(into: scratch[0], atPage: page)
            } else {
                r.pointee.consumed = try backend.readConsuming(into: UnsafeBufferPointer(start: scratch, count: n), atPage: page)
            }
        } catch {
            r.pointee.error = error
        }
    }
}
