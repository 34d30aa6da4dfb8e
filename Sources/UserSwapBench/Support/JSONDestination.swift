/// Where `--json` output goes.
public enum JSONDestination: Equatable, Sendable {
    case stdout
    case file(String)
}
