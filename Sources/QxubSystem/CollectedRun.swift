#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The outcome of a finished run (``ProcessRunner``, ``AsyncCommand``, ``runCollectingOutput(_:environment:stdinBytes:timeout:outputLimit:)``):
/// how the process ended, as data, and what it wrote, up to the output limit.
package struct CollectedRun: Sendable {
    package var exit: ProcessExit
    package var stdout: [UInt8]
    package var stderr: [UInt8]
    /// How many of the `stdinBytes` the child read before it closed its stdin or ended (all of them when it
    /// read everything).
    package var stdinAccepted: Int
    /// The run overran its timeout and was torn down (stderr then ends with a line that says so).
    package var timedOut: Bool
    package init(exit: ProcessExit, stdout: [UInt8], stderr: [UInt8], stdinAccepted: Int = 0, timedOut: Bool = false) {
        self.exit = exit
        self.stdout = stdout
        self.stderr = stderr
        self.stdinAccepted = stdinAccepted
        self.timedOut = timedOut
    }
    package var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    package var stderrText: String { String(decoding: stderr, as: UTF8.self) }
}

/// Runs a command to completion, blocking the caller: a ``ProcessRunner`` on a loop of its own.
///
/// The child stays in our process group (a terminal's Ctrl-C reaches it with us) and is killed at once
/// past its timeout. A child that stops reading its stdin early (it exited, or closed it) is no failure of
/// ours: the rest of `stdinBytes` is dropped and ``CollectedRun/stdinAccepted`` says how far it read.
/// SIGPIPE is ignored for that (process-wide, as the agent and the sessions already do), so the broken pipe
/// cannot kill the caller.
package func runCollectingOutput(
    _ arguments: [String],
    environment: [String]? = nil,
    stdinBytes: [UInt8]? = nil,
    timeout: Double = 60,
    outputLimit: Int = 16 << 20
) throws -> CollectedRun {
    var configuration = ProcessRunner.Configuration(
        arguments,
        environment: environment,
        stdin: stdinBytes,
        timeout: timeout,
        outputLimit: outputLimit
    )
    configuration.ownProcessGroup = false
    // As before the runner existed: callers tell a hung command by its SIGKILL.
    configuration.teardown = [.signal(SIGKILL)]
    return try ProcessRunner.run(configuration)
}
