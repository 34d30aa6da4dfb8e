/// What a user can do about an error, kept apart from what happened so that each way of
/// calling UserSwap says it in its own terms: a Swift program is told which call or setting to
/// change, the `userswap` command which option, a C program which function.
extension SwapError {
    /// Who reads a message, and so whose terms it uses.
    public enum Audience: Sendable {
        /// A Swift program using the library (`SwapError.message`).
        case library
        /// A user of the `userswap` command.
        case commandLine
        /// A program using the C library (`userswap_last_error`).
        case c
    }

    /// The remedies messages offer. Each is written once per audience.
    public enum Remedy: Sendable, Equatable {
        /// There is no swap file at `path`: make one.
        case makeSwapFile(path: String)
        /// What is at `path` is not a usable swap file: format it anew at `bytes`.
        case reformat(path: String, bytes: Int64)
        /// A file exists where a new one was to be made: replace it, or choose another path.
        case replaceExisting
        /// A swap file size too large for the disk or the header: choose a smaller one.
        case smallerSwapFile
        /// A swap file size too small: it must be at least `bytes`.
        case largerSwapFile(atLeast: Int64)
        /// Nothing can be swapped out to free a frame: a larger budget, fewer pins, or more swap.
        case moreMemoryOrSwap

        /// The remedy as a clause for `audience`.
        public func text(for audience: Audience) -> String {
            switch (self, audience) {
            case (.makeSwapFile(let path), .library):
                "make one with `SwapFile.format(path: \"\(path)\", bytes: 1 << 30)`, or give the device a size (`.file(path:size:)`)"
            case (.makeSwapFile(let path), .commandLine):
                "make one with `userswap format \(path) --size 1G`"
            case (.makeSwapFile(let path), .c):
                "give userswap_add_file_device a size to create it (userswap_add_file_device(space, \"\(path)\", 1 << 30, 0))"
            case (.reformat(let path, let bytes), .library):
                "reformat it with `SwapFile.format(path: \"\(path)\", bytes: \(bytes), force: true)` (everything in it is lost)"
            case (.reformat(let path, let bytes), .commandLine):
                "reformat it with `userswap format \(path) --size \(Self.sizeArgument(bytes)) --force`"
            case (.reformat(let path, let bytes), .c):
                "remove it and let userswap_add_file_device create it anew (userswap_add_file_device(space, \"\(path)\", \(bytes), 0))"
            case (.replaceExisting, .library):
                "pass `force: true` to `SwapFile.format` to replace it (everything in it is lost), or give another path"
            case (.replaceExisting, .commandLine):
                "pass --force to replace it (everything in it is lost), or give another path"
            case (.replaceExisting, .c):
                "remove it first, or give another path"
            case (.smallerSwapFile, .library), (.smallerSwapFile, .c):
                "free space on the disk, or ask for a smaller swap file"
            case (.smallerSwapFile, .commandLine):
                "free space on the disk, or choose a smaller --size"
            case (.largerSwapFile(let bytes), .library), (.largerSwapFile(let bytes), .c):
                "ask for \(bytes) bytes or more"
            case (.largerSwapFile(let bytes), .commandLine):
                "use --size \(bytes / 1024)K or more"
            case (.moreMemoryOrSwap, .library):
                "raise the budget (`SwapSpace.Configuration.memory`), hold fewer pins at once, or add a device"
            case (.moreMemoryOrSwap, .commandLine):
                "raise --memory or add swap"
            case (.moreMemoryOrSwap, .c):
                "raise the budget (userswap_config.memory, USERSWAP_MEMORY), hold fewer pins at once, or add a device"
            }
        }

        /// `bytes` as the command line's `--size` takes it: in G, M or K when exact.
        static func sizeArgument(_ bytes: Int64) -> String {
            let kib = bytes / 1024
            return kib % (1 << 20) == 0 ? "\(kib >> 20)G" : kib % 1024 == 0 ? "\(kib >> 10)M" : "\(kib)K"
        }
    }

    /// An error of `code`: what happened (`problem`), then what to do about it (`remedy`), and
    /// the system error underneath if any. `message` says the remedy in the library's terms;
    /// `message(for:)` in another audience's.
    public init(_ code: Code, _ problem: String, remedy: Remedy, errno: Errno? = nil) {
        self.init(code, problem + "; " + remedy.text(for: .library), errno: errno)
        self.problem = problem
        self.remedy = remedy
    }

    /// What happened and what to do, for `audience`.
    public func message(for audience: Audience) -> String {
        guard let remedy, let problem else { return message }
        return problem + "; " + remedy.text(for: audience)
    }

    /// `description`, for `audience`: the message and the system error's name.
    public func description(for audience: Audience) -> String {
        if let errno { return "\(message(for: audience)) [\(errno.name)]" }
        return message(for: audience)
    }
}
