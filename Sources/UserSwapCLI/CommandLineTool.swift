import UserSwap

/// Entry point of the `userswap` command.
public enum CommandLineTool {
    public static func main(_ arguments: [String]) -> Int32 {
        0
    }
}
