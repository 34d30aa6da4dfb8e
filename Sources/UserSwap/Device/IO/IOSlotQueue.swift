/// A FIFO of request slot numbers in preallocated storage: the engines' read and write queues.
/// It never grows: it holds at most every slot of its table once. Used under its owner's lock.
struct IOSlotQueue: ~Copyable {
    private let storage: UnsafeMutablePointer<Int32>
    private let capacity: Int
    private var head = 0
    private(set) var count = 0

    init(capacity: Int) {
        self.capacity = capacity
        storage = .allocate(capacity: capacity)
    }

    deinit { storage.deallocate() }

    var isEmpty: Bool { count == 0 }

    mutating func push(_ slot: Int) {
        require(count < capacity, "more queued requests than request slots")
        storage[(head + count) % capacity] = Int32(slot)
        count += 1
    }

    mutating func pop() -> Int? {
        guard count > 0 else { return nil }
        let slot = Int(storage[head])
        head = (head + 1) % capacity
        count -= 1
        return slot
    }
}
