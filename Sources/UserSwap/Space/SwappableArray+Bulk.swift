import Foundation

/// Bulk copies in and out of a range of elements, a `memcpy` per page under one pin each: what a
/// program storing blobs (byte strings, rows, feature vectors) reaches for instead of an
/// element-at-a-time loop. `SwappableBytes` is the byte-buffer spelling of the same type.
extension SwappableArray {
    /// A copy of the elements in `range`. Throws `.outOfRange` for a range outside
    /// `0..<count` (also when a removal racing the copy took elements of it: the copy is
    /// checked against the count as `element(at:)` is), or the swap device's error.
    public func elements(in range: Range<Int>) throws(SwapError) -> [Element] {
        try readChecked { () throws(SwapError) in try copyElements(in: range) }
    }

    private func copyElements(in range: Range<Int>) throws(SwapError) -> [Element] {
        try checkRange(range)
        return try [Element](unsafeUninitializedCapacity: range.count) { (buffer, initialized) throws(SwapError) in
            _ = try forEachPage(in: range, for: .read) { (start, elements) throws(Never) in
                let offset = start - range.lowerBound
                UnsafeMutableRawPointer(buffer.baseAddress! + offset)
                    .copyMemory(from: elements.baseAddress!, byteCount: elements.count * MemoryLayout<Element>.stride)
                initialized = offset + elements.count
            }
        }
    }

    /// Overwrites the elements from `index` on with `newElements` (the count stays). Throws
    /// `.outOfRange` when they do not fit below `count` (nothing is written then), or the swap
    /// device's error (the pages before the failing one are written).
    public func replaceElements(from index: Int, with newElements: some Collection<Element>) throws(SwapError) {
        let range = index..<(index + newElements.count)
        guard index >= 0, newElements.count <= Int.max - index else {
            throw SwapError(.outOfRange, "replaceElements(from: \(index)): the start is outside the SwappableArray")
        }
        try checkRange(range)
        let contiguous = newElements.withContiguousStorageIfAvailable { source in
            Result { () throws(SwapError) in try writeElements(range, from: source) }
        }
        if let contiguous { return try contiguous.get() }
        try [Element](newElements).withUnsafeBufferPointer { (source) throws(SwapError) in try writeElements(range, from: source) }
    }

    private func writeElements(_ range: Range<Int>, from source: UnsafeBufferPointer<Element>) throws(SwapError) {
        _ = try forEachPage(in: range, for: .write) { (start, elements) throws(Never) in
            let offset = start - range.lowerBound
            UnsafeMutableRawPointer(elements.baseAddress!)
                .copyMemory(from: source.baseAddress! + offset, byteCount: elements.count * MemoryLayout<Element>.stride)
        }
    }
}

/// A swappable byte buffer: `[UInt8]`-like storage for blobs larger than the RAM budget.
/// Append bytes (`append(contentsOf:)` takes an `Array`, `Data` or any byte sequence), read a
/// range back (`elements(in:)`, `data(in:)`), overwrite in place (`replaceElements(from:with:)`).
public typealias SwappableBytes = SwappableArray<UInt8>

extension SwappableArray where Element == UInt8 {
    /// The bytes in `range` as `Data`. Throws as `elements(in:)`.
    public func data(in range: Range<Int>) throws(SwapError) -> Data {
        try readChecked { () throws(SwapError) in try copyData(in: range) }
    }

    private func copyData(in range: Range<Int>) throws(SwapError) -> Data {
        try checkRange(range)
        var data = Data(count: range.count)
        var failure: SwapError?
        data.withUnsafeMutableBytes { buffer in
            do throws(SwapError) {
                _ = try forEachPage(in: range, for: .read) { (start, elements) throws(Never) in
                    (buffer.baseAddress! + (start - range.lowerBound))
                        .copyMemory(from: elements.baseAddress!, byteCount: elements.count)
                }
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        return data
    }
}
