import Foundation
import UserSwap
import UserSwapBench

/// `userswap exec [options] -- CMD ARGS…`: runs an unmodified program with its heap in
/// UserSwap's memory, under a RAM budget, swapping to a file the user owns. It checks that the
/// program can be served (`ExecutableCheck`), puts the preload library in `LD_PRELOAD` and the
/// space's settings in the environment, and replaces itself with the program (execve): the
/// program keeps this process's id, its exit status is the command's. docs/EXEC.md says how.
enum ExecCommand {
    /// The preload library's file name, installed beside libuserswap.so.
    static let preloadName = "libuserswap-preload.so"

    static func run(_ options: ExecOptions, console: Console) throws(SwapError) {
        let environment = ProcessInfo.processInfo.environment
        guard let command = options.command.first, !command.isEmpty else {
            throw SwapError(.invalidArgument, "no command to run: userswap exec [options] -- CMD ARGS…")
        }
        guard let path = ExecutableCheck.resolve(command, path: environment["PATH"]) else {
            throw SwapError(.noSuchFile, ExecutableCheck.Refusal.notFound(command).description)
        }
        if let refusal = ExecutableCheck.check(path) {
            throw SwapError(.unsupported, refusal.description)
        }
        if let interpreter = ExecutableCheck.scriptInterpreter(path) {
            console.errorLine(
                "userswap exec: note: \(path) is a script: the heap of its interpreter \(interpreter) is served, not that of the programs it runs (the preload library leaves their environment); to serve a program a script starts, run that program itself"
            )
        }
        let preload = try findPreload(environment)
        var variables = environment.filter { !$0.key.hasPrefix("USERSWAP_") || $0.key == "USERSWAP_REDIS_PASSWORD" }
        variables.merge(try settings(options), uniquingKeysWith: { $1 })
        variables["USERSWAP_EXEC_COMMAND"] = options.command.joined(separator: " ")
        let existing = environment["LD_PRELOAD"].map { $0.isEmpty ? "" : ":" + $0 } ?? ""
        variables["LD_PRELOAD"] = preload + existing
        try execute(path, arguments: options.command, environment: variables)
    }

    /// The variables the preload library reads (`userswap_space_from_env` and its own).
    static func settings(_ options: ExecOptions) throws(SwapError) -> [String: String] {
        var variables = [
            "USERSWAP_MEMORY": String(options.memoryBytes),
            "USERSWAP_SWAP_SIZE": String(options.effectiveSwapBytes),
        ]
        switch options.swap {
        case .temporaryFile(let directory):
            if let directory { variables["USERSWAP_SWAP_DIR"] = absolute(directory) }
        case .file(let file): variables["USERSWAP_SWAP_FILE"] = absolute(file)
        case .redis(let url): variables["USERSWAP_REDIS_URL"] = url
        }
        if let report = options.reportPath { variables["USERSWAP_EXEC_REPORT"] = absolute(report) }
        if let bytes = options.groupMemoryBytes { variables["USERSWAP_EXEC_GROUP_MEMORY"] = String(bytes) }
        if let bytes = options.groupSwapBytes { variables["USERSWAP_EXEC_GROUP_SWAP"] = String(bytes) }
        if options.quiet { variables["USERSWAP_EXEC_QUIET"] = "1" }
        if options.noEncryption { variables["USERSWAP_ENCRYPTION"] = "none" }
        return variables
    }

    /// The program may change its folder: paths given relative to ours are made absolute.
    private static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }

    /// `USERSWAP_PRELOAD`, else the library beside an installed userswap (`../lib`) or beside
    /// the library of a build tree (`.build/clib/release`, from `.build/debug` or `.build/release`).
    static func findPreload(_ environment: [String: String]) throws(SwapError) -> String {
        if let given = environment["USERSWAP_PRELOAD"], !given.isEmpty {
            guard access(given, R_OK) == 0 else {
                throw SwapError(.noSuchFile, "USERSWAP_PRELOAD=\(given): no such library; build it with `make clib`")
            }
            return absolute(given)
        }
        // The folder of this executable as invoked (.build/debug) and with links resolved
        // (.build/x86_64-unknown-linux-gnu/debug).
        let invoked = URL(fileURLWithPath: CommandLine.arguments[0].contains("/") ? CommandLine.arguments[0] : "/proc/self/exe")
        let folders = [invoked.deletingLastPathComponent(), invoked.resolvingSymlinksInPath().deletingLastPathComponent()]
        let candidates = folders.flatMap { folder in
            ["../lib", "../clib/release", "../../clib/release", "."].map { folder.appendingPathComponent("\($0)/\(preloadName)") }
        }
        for candidate in candidates where access(candidate.path, R_OK) == 0 {
            return candidate.standardizedFileURL.path
        }
        throw SwapError(
            .noSuchFile,
            "cannot find \(preloadName) (looked in \(candidates.map { $0.standardizedFileURL.deletingLastPathComponent().path }.joined(separator: ", "))): build it with `make clib` or `make install`, or name it in USERSWAP_PRELOAD"
        )
    }

    /// Replaces this process with the program; returns only by throwing.
    private static func execute(_ path: String, arguments: [String], environment: [String: String]) throws(SwapError) {
        func cStrings(_ strings: [String]) -> [UnsafeMutablePointer<CChar>?] { strings.map { strdup($0) } + [nil] }
        let argv = cStrings(arguments)
        let envp = cStrings(environment.map { "\($0.key)=\($0.value)" }.sorted())
        fflush(nil)
        execve(path, argv, envp)
        let error = errno
        throw SwapError(.unsupported, "cannot run \(path): \(String(cString: strerror(error)))", errno: Errno(rawValue: error))
    }
}
