import UserSwap

/// `userswap bench array`: what `SwappableArray` costs next to `Array`, per element, for what a
/// Swift developer does with an array — the figures of the README's and docs/LIBRARY.md's table.
///
/// `elements` `UInt64`s (4 M: 32 MiB) in a budget that holds them all (`--memory`, default three
/// times the data, so that the appends fit beside the array): every page stays resident, so
/// these are the collection's own costs; a page on swap adds a device read (`random`, `zipf`).
/// Each operation runs on a `SwappableArray<UInt64>` and on a `[UInt64]` of the same values,
/// one after the other, `--iterations` times (3) after `--warmup` (1); the report gives the
/// best and the median nanoseconds per element of each, and their ratio:
///
/// - `read_in_order`: `sum &+= a[i]` for every index; `read_random`: the same at `elements`
///   random indices (one list for both); `write_in_order`: `a[i] = x`;
/// - `iterate`: `for x in a` (a page at a time for `SwappableArray`);
/// - `page_buffers`: the sum over `withElements(in:)` against `withUnsafeBufferPointer`;
/// - `append`: `elements` single appends to an empty collection; `append_contents_of`: one
///   `append(contentsOf:)` of an `Array` of `elements`.
///
/// Verified: each operation's sum (or the appended contents) is the same on both collections.
/// `all_resident` says whether nothing was swapped out (a `--memory` too small for the arrays
/// makes the figures include swap I/O).
enum ArrayScenario: BenchScenario {
    static let name = "array"
    static let summary = "SwappableArray next to Array: ns per element for access, iteration, page buffers, append"

    static let operationNames = [
        "read_in_order", "read_random", "write_in_order", "iterate", "page_buffers", "append", "append_contents_of",
    ]
    static let elements = BenchParameter.integer("elements", 1024...(1 << 28), default: 4 << 20, "UInt64 elements of each collection")
    static let operations = BenchParameter.list(
        "operations", of: operationNames, default: operationNames.joined(separator: ","), "the operations timed")
    static func parameters(mode: BenchMode?) -> [BenchParameter] { [elements, operations] }

    static func run(options: BenchOptions, harness: BenchHarness) throws -> BenchReport {
        let n: Int = try options.value(Self.elements)
        let text: String = try options.value(Self.operations)
        let chosen = operationNames.filter { text.split(separator: ",").contains(Substring($0)) }
        if let threads = options.threads, threads != 1 { harness.log("array is a one-thread measurement; ignoring --threads \(threads)") }
        let dataBytes = Int64(n * MemoryLayout<UInt64>.stride)
        let budget = options.memoryBytes ?? 3 * dataBytes + (16 << 20)
        // A swap device in memory, so that a budget too small swaps (and the run says it is not
        // verified) instead of failing.
        let space = try SwapSpace(
            .init(memory: Int(budget), devices: [.memory(bytes: 3 * Int(dataBytes) + (16 << 20))], sync: harness.swapProtocol.sync()))

        var values = [UInt64](repeating: 0, count: n)
        var random = SplitMix64(seed: options.seed ?? 0x5EED_A11A_7E57_0001)
        for i in 0..<n { values[i] = random.next() }
        let randomIndices = (0..<n).map { _ in Int(random.next() % UInt64(n)) }
        let swappable = try SwappableArray<UInt64>(count: 0, in: space)
        try swappable.append(contentsOf: values)
        var array = values

        var results: [String: JSONValue] = [:]
        var agreed = true
        var timedSeconds = 0.0
        var lines: [String] = []
        for operation in chosen {
            var sums: (swappable: UInt64, array: UInt64) = (0, 0)
            let s = try harness.measure("\(operation) SwappableArray", warmup: 1, iterations: 3) {
                sums.swappable = try Self.perform(operation, on: swappable, in: space, indices: randomIndices, values: values)
            }
            let a = harness.measure("\(operation) Array", warmup: 1, iterations: 3) {
                sums.array = Self.perform(operation, on: &array, indices: randomIndices, values: values)
            }
            agreed = agreed && sums.swappable == sums.array
            if sums.swappable != sums.array { harness.log("NOT verified: \(operation) gave \(sums.swappable) and \(sums.array)") }
            timedSeconds += s.samples.reduce(0, +) + a.samples.reduce(0, +)
            let perElement = { (t: Double) in (t * 1e9 / Double(n) * 100).rounded() / 100 }
            results[operation] = [
                "swappable_ns_per_element": ["best": .double(perElement(s.min)), "median": .double(perElement(s.median))],
                "array_ns_per_element": ["best": .double(perElement(a.min)), "median": .double(perElement(a.median))],
                "ratio_best": .double((s.min / Swift.max(a.min, 1e-12) * 10).rounded() / 10),
                "swappable_iterations": s.json, "array_iterations": a.json,
            ]
            lines.append(
                "\(operation.padding(toLength: 19, withPad: " ", startingAt: 0)) SwappableArray \(perElement(s.min)) ns, Array \(perElement(a.min)) ns per element (best)"
            )
        }
        // What the write left is the same in both, page by page.
        var same = swappable.count == array.count
        try swappable.withElements(in: 0..<swappable.count) { start, buffer in
            for (k, x) in buffer.enumerated() where x != array[start + k] { same = false }
        }
        let problems = space.checkInvariants()
        for line in lines { harness.log(line) }

        var report = BenchReport(
            scenario: name, swapProtocol: harness.swapProtocol, threads: 1, ops: Int64(n * chosen.count * 2),
            seconds: timedSeconds, machine: harness.machine)
        report.fill(from: space, budget: budget, data: dataBytes)
        report.verified = agreed && same && problems.isEmpty
        report.extras["all_resident"] = .bool(space.statistics[.swapOuts] == 0)
        report.extras["elements"] = JSONValue(n)
        report.extras["element_type"] = .string("UInt64")
        report.extras["results"] = .object(results)
        if space.statistics[.swapOuts] != 0 {
            harness.log(
                "\(space.statistics[.swapOuts]) pages swapped out: these figures include swap I/O; give a --memory that holds the arrays (all_resident: false)"
            )
        }
        return report
    }

    /// One run of `operation` on the swappable array; a checksum of what it read or made.
    static func perform(
        _ operation: String, on a: SwappableArray<UInt64>, in space: SwapSpace, indices: [Int], values: [UInt64]
    ) throws -> UInt64 {
        var sum: UInt64 = 0
        switch operation {
        case "read_in_order":
            for i in 0..<a.count { sum &+= a[i] }
        case "read_random":
            for i in indices { sum &+= a[i] }
        case "write_in_order":
            for i in 0..<a.count { a[i] = values[i] &* 3 }
            sum = UInt64(a.count)
        case "iterate":
            for x in a { sum &+= x }
        case "page_buffers":
            try a.withElements(in: 0..<a.count) { _, buffer in for x in buffer { sum &+= x } }
        case "append":
            let b = try SwappableArray<UInt64>(count: 0, in: space)
            for x in values { try b.append(x) }
            sum = b.count == values.count ? b[b.count - 1] &+ b[0] : 0
        case "append_contents_of":
            let b = try SwappableArray<UInt64>(count: 0, in: space)
            try b.append(contentsOf: values)
            sum = b.count == values.count ? b[b.count - 1] &+ b[0] : 0
        default:
            trap("operation \(operation) is not one of \(operationNames)")
        }
        return sum
    }

    /// The same on an `Array`.
    static func perform(_ operation: String, on a: inout [UInt64], indices: [Int], values: [UInt64]) -> UInt64 {
        var sum: UInt64 = 0
        switch operation {
        case "read_in_order":
            for i in 0..<a.count { sum &+= a[i] }
        case "read_random":
            for i in indices { sum &+= a[i] }
        case "write_in_order":
            for i in 0..<a.count { a[i] = values[i] &* 3 }
            sum = UInt64(a.count)
        case "iterate":
            for x in a { sum &+= x }
        case "page_buffers":
            a.withUnsafeBufferPointer { buffer in for x in buffer { sum &+= x } }
        case "append":
            var b: [UInt64] = []
            for x in values { b.append(x) }
            sum = b.count == values.count ? b[b.count - 1] &+ b[0] : 0
        case "append_contents_of":
            var b: [UInt64] = []
            b.append(contentsOf: values)
            sum = b.count == values.count ? b[b.count - 1] &+ b[0] : 0
        default:
            trap("operation \(operation) is not one of \(operationNames)")
        }
        return sum
    }
}
