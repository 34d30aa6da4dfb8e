import Testing

extension Trait where Self == TimeLimitTrait {
    /// The time limit of suites whose failure mode is a hang (a lost wake-up, a task never
    /// resumed): it turns the hang into a failure. It is long because a test's clock runs while
    /// it waits for a thread: on a loaded machine, with blocking suites running in parallel, a
    /// test that takes a second alone has waited more than two minutes for one.
    static var hangLimit: Self { .timeLimit(.minutes(10)) }
}
