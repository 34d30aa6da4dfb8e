extension UserFaultFD {
    /// Why a userfaultfd call failed, with the errno the kernel gave. The space turns it into a
    /// `SwapError` that says what to do (`SwapError(_: UserFaultFD.Failure)`).
    struct Failure: Error, Equatable {
        enum Kind: Equatable {
            /// The process may not open one (EPERM, EACCES).
            case notPermitted
            /// Neither the syscall nor /dev/userfaultfd exists.
            case unavailable
            /// `UFFDIO_API` refused even the required features.
            case handshakeFailed
            /// The kernel lacks shared-memory missing or minor faults (or SIGBUS mode).
            case featuresMissing
            /// `UFFDIO_REGISTER` refused a range of `bytes`.
            case registerFailed(bytes: Int)
            /// Reading fault messages failed.
            case readFailed
        }

        let kind: Kind
        let errno: Errno?

        init(_ kind: Kind, errno: Errno? = nil) {
            self.kind = kind
            self.errno = errno
        }
    }
}
