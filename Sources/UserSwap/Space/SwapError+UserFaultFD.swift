extension SwapError {
    /// The engine's error for a failed userfaultfd call: its code, its errno, and what to do.
    init(_ failure: UserFaultFD.Failure) {
        switch failure.kind {
        case .notPermitted:
            self.init(
                .permissionDenied,
                "userfaultfd is not allowed for this process: set the sysctl vm.unprivileged_userfaultfd=1, or give the user read-write access to /dev/userfaultfd (or run with CAP_SYS_PTRACE)",
                errno: failure.errno)
        case .unavailable:
            self.init(
                .unsupported,
                "this kernel offers no userfaultfd (syscall and /dev/userfaultfd both failed); transparent regions need Linux 5.14 or later built with CONFIG_USERFAULTFD",
                errno: failure.errno)
        case .handshakeFailed:
            self.init(
                .unsupported,
                "the userfaultfd handshake failed; transparent regions need shared-memory minor faults (Linux 5.14 or later)",
                errno: failure.errno)
        case .featuresMissing:
            self.init(
                .unsupported, "this kernel's userfaultfd lacks shared-memory minor faults (Linux 5.14 or later)", errno: failure.errno)
        case .registerFailed(let bytes):
            self.init(.unsupported, "cannot register \(bytes) bytes with userfaultfd", errno: failure.errno)
        case .readFailed:
            self.init(.ioError, "reading the userfaultfd failed", errno: failure.errno)
        }
    }
}
