import QxubProtocol

/// A failure the user sees: what went wrong, what to do, and qxub's exit status for it.
package struct ClientError: Error, Hashable, Sendable, CustomStringConvertible {
    package var message: String
    package var hint: String
    package var exitCode: Int32
    /// The remote platform has no agent this qxub can use (`qxub agent install` fixes it).
    package var agentMissing = false
    /// Nothing was done: the command needs a terminal (an ssh login that may prompt) that a warm fork of a
    /// session holder does not have; the qxub that asked runs it itself (``WarmStart``).
    package var needsForeground = false

    package init(_ message: String, hint: String = "", exitCode: Int32 = ExitCodes.internalError) {
        self.message = message
        self.hint = hint
        self.exitCode = exitCode
    }

    package var description: String { hint.isEmpty ? message : message + "\n  hint: " + hint }

    /// An error frame from the agent, with the exit status its code maps to.
    package init(_ error: ErrorMessage) {
        let exitCode: Int32
        switch error.code {
        case .submitFailed: exitCode = ExitCodes.submissionRefused
        case .unknownJob, .schedulerUnavailable: exitCode = ExitCodes.unavailable
        case .malformedRequest, .unknownRequest: exitCode = ExitCodes.usage
        case .cancelFailed, .internalError, .unknown: exitCode = ExitCodes.internalError
        }
        // The agent's text is printed on a terminal: its escape sequences must not reach it.
        self.init(
            error.message.escapingControlCharacters,
            hint: error.hint.escapingControlCharacters,
            exitCode: exitCode
        )
    }
}

/// qxub's exit statuses (docs/exit-codes.md). A job's own code passes through unchanged; these are the
/// statuses qxub itself chooses, and qxub always says on stderr when it chose one.
package enum ExitCodes {
    /// Bad command line or configuration (sysexits EX_USAGE).
    package static let usage: Int32 = 64
    /// The agent, the scheduler or the job could not be reached or found (EX_UNAVAILABLE).
    package static let unavailable = JobTermination.ExitStatus.unavailable
    /// A bug in qxub (EX_SOFTWARE).
    package static let internalError: Int32 = 70
    /// The job's environment could not be set up: conda, modules, container, working directory (EX_CONFIG).
    package static let setupFailed: Int32 = 78
    /// The job ran out of walltime (as GNU timeout).
    package static let walltime = JobTermination.ExitStatus.walltime
    /// The scheduler refused the submission (as `docker run` for its own errors).
    package static let submissionRefused: Int32 = 125
    /// Cancelled with Ctrl-C (128 + SIGINT).
    package static let interrupted = JobTermination.ExitStatus.interrupted
    /// The job ran out of memory (128 + SIGKILL, as the kernel's OOM killer).
    package static let memory = JobTermination.ExitStatus.memory
    /// Our stdout was closed (`qxub exec … | head`): qxub stopped following and left the job running
    /// (128 + SIGPIPE, what a Unix tool killed by the broken pipe reports).
    package static let stdoutClosed: Int32 = 141
    /// Deleted by someone else (128 + SIGTERM, what qdel and scancel send).
    package static let deleted = JobTermination.ExitStatus.deleted
    /// The node failed under the job; rerunning may work (EX_TEMPFAIL).
    package static let nodeFailure = JobTermination.ExitStatus.nodeFailure
    /// Lost the connection to the cluster while the job still runs.
    package static let connectionLost: Int32 = 255

    /// The status qxub exits with for a job's end, and a sentence for stderr when qxub chose it.
    package static func exit(for termination: JobTermination) -> (code: Int32, message: String?) {
        let code = termination.exitStatus
        switch termination {
        case .exited:
            return (code, nil)
        case .signaled(let signal):
            guard (1...127).contains(signal) else { return (code, "the job was killed by an unknown signal \(signal)") }
            return (code, "the job was killed by signal \(signal)\(signalName(signal).map { " (\($0))" } ?? "")")
        case .killedByScheduler(let reason, let detail, let ranFirst):
            let tail = detail.isEmpty ? "" : ": " + detail
            switch reason {
            case .walltime: return (code, "the scheduler killed the job: walltime exceeded\(tail)")
            case .memory: return (code, "the scheduler killed the job: memory limit exceeded\(tail)")
            case .deleted:
                return (
                    code,
                    ranFirst
                        ? "the job was deleted while it ran (qdel/scancel from outside this qxub)\(tail)"
                        : "the job was deleted before it started\(tail)"
                )
            case .nodeFailure: return (code, "the job's node failed\(tail); rerunning may work")
            case .other: return (code, "the scheduler ended the job\(tail)")
            }
        case .cancelled(let ranFirst):
            return (code, ranFirst ? "the job was cancelled" : "the job was cancelled before it started")
        case .unknown(let detail):
            return (code, "cannot tell how the job ended: \(detail)")
        case .exitUnrecorded(_, let detail):
            return (code, detail)
        }
    }

    static func signalName(_ signal: Int32) -> String? {
        switch signal {
        case 1: "SIGHUP"
        case 2: "SIGINT"
        case 6: "SIGABRT"
        case 9: "SIGKILL"
        case 11: "SIGSEGV"
        case 15: "SIGTERM"
        case 24: "SIGXCPU"
        default: nil
        }
    }
}
