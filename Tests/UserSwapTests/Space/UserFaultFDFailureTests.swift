import Testing

@testable import UserSwap

@Suite("userfaultfd failures as engine errors")
struct UserFaultFDFailureTests {
    @Test("each failure keeps its errno and becomes an error that says what to do")
    func mapping() {
        let denied = SwapError(UserFaultFD.Failure(.notPermitted, errno: .notPermitted))
        #expect(denied.code == .permissionDenied && denied.errno == .notPermitted)
        #expect(denied.message.contains("vm.unprivileged_userfaultfd=1"))
        let missing = SwapError(UserFaultFD.Failure(.unavailable, errno: Errno(rawValue: 38)))
        #expect(missing.code == .unsupported && missing.message.contains("CONFIG_USERFAULTFD"))
        #expect(SwapError(UserFaultFD.Failure(.featuresMissing)).message.contains("Linux 5.14"))
        let register = SwapError(UserFaultFD.Failure(.registerFailed(bytes: 8192), errno: Errno(rawValue: 22)))
        #expect(register.code == .unsupported && register.message.contains("8192 bytes"))
        #expect(SwapError(UserFaultFD.Failure(.readFailed, errno: Errno(rawValue: 5))).code == .ioError)
    }
}
