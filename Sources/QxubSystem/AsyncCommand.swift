/// Runs a command on an ``EventLoop`` without blocking it (a ``ProcessRunner``): stdin is fed while both
/// output pipes are drained, output is capped, and past its timeout the child's process group gets SIGTERM,
/// then SIGKILL.
package final class AsyncCommand {
    private let runner: ProcessRunner

    private init(runner: ProcessRunner) {
        self.runner = runner
    }

    /// Starts `arguments` and calls `completion` on the loop once it has exited and its pipes are drained.
    @discardableResult
    package static func run(
        _ arguments: [String],
        on loop: EventLoop,
        environment: [String]? = nil,
        stdinBytes: [UInt8]? = nil,
        timeout: Double = 120,
        outputLimit: Int = 16 << 20,
        completion: @escaping (CollectedRun) -> Void
    ) throws -> AsyncCommand {
        let configuration = ProcessRunner.Configuration(
            arguments,
            environment: environment,
            stdin: stdinBytes,
            timeout: timeout,
            outputLimit: outputLimit
        )
        return AsyncCommand(runner: try ProcessRunner.start(configuration, on: loop, completion: completion))
    }
}
