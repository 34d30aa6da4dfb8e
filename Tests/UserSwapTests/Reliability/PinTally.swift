import Synchronization

/// The frames that the concurrent runs of one space hold pinned, so that a run's out-of-memory
/// oracle sees every run's pins and not only its own: with large folios a pin of one page holds
/// the whole folio, and a few runs holding a few pins each can fill the budget between them.
///
/// Each run publishes an upper bound of what it holds: its held pins' frames, plus one folio
/// while a step runs (the page that step's access holds for a moment), published before the
/// step and lowered only after it. An access records the highest total the other runs
/// published while it ran (`beginAccess` to `othersPeak`): the allocation that failed saw at
/// most that much pinned by them.
final class PinTally: Sendable {
    private struct State {
        /// Per run: the frames it may hold now.
        var held: [Int]
        /// Per run: the most the other runs held together since its access began.
        var peak: [Int]
    }

    private let state: Mutex<State>

    init(runs: Int) {
        state = Mutex(State(held: Array(repeating: 0, count: runs), peak: Array(repeating: 0, count: runs)))
    }

    /// Run `run` may hold `frames` frames from now on.
    func publish(run: Int, frames: Int) {
        state.withLock { s in
            s.held[run] = frames
            let total = s.held.reduce(0, +)
            for r in s.peak.indices { s.peak[r] = max(s.peak[r], total - s.held[r]) }
        }
    }

    /// Starts `run`'s record of what the others hold.
    func beginAccess(run: Int) {
        state.withLock { s in s.peak[run] = s.held.reduce(0, +) - s.held[run] }
    }

    /// The most the other runs held together since `run`'s `beginAccess`.
    func othersPeak(run: Int) -> Int { state.withLock { $0.peak[run] } }
}
