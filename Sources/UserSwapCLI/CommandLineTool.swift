import CUserSwap
import UserSwap
import UserSwapBench

/// The `userswap` command: parses the command line (`parse`, a pure function), runs the verb,
/// and turns the outcome into an exit status (`ExitCode`): 0 success, 1 failure with the error's
/// description on stderr, 64 usage error with the usage line on stderr.
public enum CommandLineTool {
    /// The general synopsis, printed with usage errors that have no verb.
    public static let usageLine = "usage: userswap VERB [options]   (verbs: \(Verb.allCases.map(\.rawValue).joined(separator: ", ")))"

    /// The entry point of the executable; `arguments` exclude the program name.
    public static func main(_ arguments: [String]) -> Int32 {
        // A pipe would otherwise buffer stdout until exit: progress and summaries would arrive
        // all at once, or never if a run hangs.
        cus_line_buffer_stdout()
        // One malloc arena for the whole process. glibc gives each thread that allocates an
        // arena of its own (up to 8 per core), and an arena keeps the memory it grew to: the
        // threads that pin, reclaim and seal pages held 5-6 MiB of them outside the budget in an
        // explicit run at 64 MiB, for a heap whose live peak is ~2 MiB. The engine allocates
        // little on its hot paths, so the one arena's lock is rarely contended.
        _ = cus_malloc_set_arena_max(1)
        if case .success(let invocation) = parse(arguments), invocation.makesFiles {
            TerminationSignals.install()
        }
        return main(arguments, console: .standard)
    }

    /// `main` with its output redirected, for tests.
    public static func main(_ arguments: [String], console: Console) -> Int32 {
        switch parse(arguments) {
        case .failure(let usage):
            console.writeError(usage.description)
            return usage.exitCode
        case .success(let invocation):
            return execute(invocation, console: console)
        }
    }

    /// Runs a parsed invocation. Every error a verb throws ends here: its description goes to
    /// stderr and the status is `ExitCode.failure`.
    public static func execute(_ invocation: Invocation, console: Console) -> Int32 {
        do {
            switch invocation {
            case .help(let verb):
                console.writeOutput(verb.map(HelpText.verb) ?? HelpText.general)
            case .format(let options):
                try FormatCommand.run(options, console: console)
            case .inspect(let options):
                try InspectCommand.run(options, console: console)
            case .run(let options):
                try RunCommand.run(options, console: console)
            case .exec(let options):
                try ExecCommand.run(options, console: console)
            case .listScenarios:
                for scenario in BenchRegistry.listed {
                    console.line(scenario.name)
                }
            case .bench(let options):
                return BenchCommand.run(options, console: console)
            case .redisClean(let options):
                try RedisCleanCommand.run(options, console: console)
            }
            return ExitCode.success
        } catch let error as SwapError {
            console.errorLine("userswap: \(error.description(for: .commandLine))")
        } catch let error as BenchError {
            console.errorLine("userswap: \(error.description)")
        } catch let error as WorkloadError {
            console.errorLine("userswap: \(error.description)")
        } catch {
            console.errorLine("userswap: \(error)")
        }
        return ExitCode.failure
    }
}
