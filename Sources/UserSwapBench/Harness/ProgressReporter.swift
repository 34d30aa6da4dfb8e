import CUserSwap
import Synchronization

/// Shows how far a long phase has got, on stderr so that stdout stays clean for results: a bar
/// redrawn in place (at most 10 times a second) when stderr is a terminal, and a plain line
/// every 5 seconds when it is not (a CI log, a pipe). Safe to call from any thread.
public final class ProgressReporter: Sendable {
    public enum Style: Sendable {
        case bar
        case lines
        case silent
    }

    private struct State {
        var lastDrawNs: UInt64 = 0
        var finished = false
        var drewBar = false
    }

    private let label: String
    private let style: Style
    private let console: Console
    private let startNs: UInt64
    /// Protects the throttle and whether the bar needs its closing newline.
    private let state = Mutex(State())

    static let barIntervalNs: UInt64 = 100_000_000
    static let lineIntervalNs: UInt64 = 5_000_000_000
    static let barWidth = 30

    public init(label: String, style: Style, console: Console) {
        self.label = label
        self.style = style
        self.console = console
        startNs = cus_monotonic_ns()
    }

    /// A bar on a terminal, lines otherwise, nothing when `enabled` is false.
    public convenience init(label: String, console: Console, enabled: Bool = true) {
        self.init(label: label, style: !enabled ? .silent : console.errorIsTerminal ? .bar : .lines, console: console)
    }

    /// Reports `fraction` (0…1) done; `detail` is shown after it ("1.2M ops").
    public func update(_ fraction: Double, detail: String = "") {
        guard style != .silent else { return }
        let now = cus_monotonic_ns()
        let draw: Bool = state.withLock { state in
            guard !state.finished else { return false }
            let interval = style == .bar ? Self.barIntervalNs : Self.lineIntervalNs
            // Lines: the first one only after a full interval, so short phases stay quiet.
            let last = state.lastDrawNs == 0 && style == .lines ? startNs : state.lastDrawNs
            guard now &- last >= interval else { return false }
            state.lastDrawNs = now
            if style == .bar { state.drewBar = true }
            return true
        }
        if draw { console.writeError(render(fraction, detail: detail, now: now)) }
    }

    /// Ends the display: the bar is completed and its line closed; lines mode prints "done".
    public func finish(detail: String = "") {
        guard style != .silent else { return }
        let now = cus_monotonic_ns()
        let wasDrawn: Bool? = state.withLock { state in
            guard !state.finished else { return nil }
            state.finished = true
            return state.drewBar
        }
        guard let wasDrawn else { return }
        switch style {
        case .bar:
            if wasDrawn { console.writeError(render(1, detail: detail, now: now) + "\n") }
        case .lines:
            let elapsed = Double(now &- startNs) / 1e9
            if elapsed >= Double(Self.lineIntervalNs) / 1e9 {
                console.writeError("\(label): done after \(LatencySummary.trimmed(elapsed)) s\(detail.isEmpty ? "" : ", \(detail)")\n")
            }
        case .silent:
            break
        }
    }

    /// The bar (with `\r` and erase-line, to redraw in place) or one plain line.
    func render(_ fraction: Double, detail: String, now: UInt64) -> String {
        let clamped = min(max(fraction.isFinite ? fraction : 0, 0), 1)
        let percent = Int((clamped * 100).rounded(.down))
        let elapsed = LatencySummary.trimmed(Double(now &- startNs) / 1e9)
        let suffix = detail.isEmpty ? "" : "  \(detail)"
        switch style {
        case .bar:
            let filled = Int((clamped * Double(Self.barWidth)).rounded(.down))
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: Self.barWidth - filled)
            return "\r\u{1B}[2K\(label) [\(bar)] \(percent)%  \(elapsed) s\(suffix)"
        case .lines, .silent:
            return "\(label): \(percent)% after \(elapsed) s\(suffix)\n"
        }
    }
}
