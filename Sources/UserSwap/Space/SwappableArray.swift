/// A fixed-size array of plain values whose storage is a swappable region: elements live in RAM
/// while hot and on a swap device when memory is short. Each access pins the element's page for
/// the duration of the access.
///
/// Elements never straddle pages: a page holds `4096 / stride` of them.
public final class SwappableArray<Element: BitwiseCopyable>: RandomAccessCollection, MutableCollection {
    public let region: Region
    public let count: Int
    private let perPage: Int

    /// An array of `count` elements, all zero bits, in `space`.
    public init(count: Int, in space: SwapSpace) throws(SwapError) {
        let stride = MemoryLayout<Element>.stride
        precondition(stride > 0 && stride <= SwapPage.size, "elements must be 1...4096 bytes")
        perPage = SwapPage.size / stride
        self.count = count
        region = try space.makeRegion(bytes: Swift.max(1, (count + perPage - 1) / perPage) * SwapPage.size)
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { count }

    /// Reads or writes one element. An I/O error of the swap device traps (use `element(at:)`
    /// and `setElement(_:at:)` to handle it).
    public subscript(i: Int) -> Element {
        get {
            do { return try element(at: i) } catch { fatalError("SwappableArray read of element \(i): \(error)") }
        }
        set {
            do { try setElement(newValue, at: i) } catch { fatalError("SwappableArray write of element \(i): \(error)") }
        }
    }

    /// Reads element `i`, or throws the swap device's error.
    public func element(at i: Int) throws(SwapError) -> Element {
        precondition(i >= 0 && i < count, "index \(i) out of range 0..<\(count)")
        let pin = try region.pin(i / perPage, for: .read)
        return pin.bytes.load(fromByteOffset: (i % perPage) * MemoryLayout<Element>.stride, as: Element.self)
    }

    /// Writes element `i`, or throws the swap device's error.
    public func setElement(_ value: Element, at i: Int) throws(SwapError) {
        precondition(i >= 0 && i < count, "index \(i) out of range 0..<\(count)")
        let pin = try region.pin(i / perPage, for: .write)
        pin.bytes.storeBytes(of: value, toByteOffset: (i % perPage) * MemoryLayout<Element>.stride, as: Element.self)
    }
}
