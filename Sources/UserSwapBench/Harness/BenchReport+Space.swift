import UserSwap

extension BenchReport {
    /// The sizes of a run on `space`, and its swap traffic so far.
    mutating func fill(from space: SwapSpace, budget: Int64, data: Int64) {
        budgetBytes = budget
        dataBytes = data
        swapIns = Int64(space.statistics[.swapIns])
        swapOuts = Int64(space.statistics[.swapOuts])
        deviceReads = Int64(space.statistics[.deviceReads])
        deviceWrites = Int64(space.statistics[.deviceWrites])
    }
}
