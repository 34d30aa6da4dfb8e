/// Stops the program with `message` when `condition` is false: the house `precondition`, whose
/// message survives release builds.
///
/// The standard library's `precondition` and `preconditionFailure` drop their message in `-O`
/// builds: a release binary stops on an illegal instruction and says nothing. Every trap in
/// UserSwap goes through `require(_:_:)` or `trap(_:)` instead, so that a user of a release
/// build reads what went wrong (and the file and line). `assert` stays as it is: it is meant for
/// debug builds only.
///
/// Inlined: the condition is evaluated where it is written and costs what `precondition`'s
/// does; the message is built only on the way to the trap. `package`: every module of UserSwap
/// uses it, no client sees it.
@inlinable @inline(__always)
package func require(
    _ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line
) {
    if _slowPath(!condition) { trap(message(), file: file, line: line) }
}

/// Stops the program with `message`: the house `preconditionFailure`, whose message survives
/// release builds (see `require(_:_:)`). Out of line, so that the paths leading to it stay small.
@inline(never) @usableFromInline
package func trap(_ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) -> Never {
    fatalError(message(), file: file, line: line)
}
