import QxubProtocol

/// What a job session tells the user about its progress (rendered on stderr, never on stdout).
package enum SessionStatus: Sendable, Equatable {
    case submitted(jobID: String, backend: String)
    case state(JobState)
    case finished(code: Int32, message: String?)
    case cancelling(jobID: String)
    case detached(jobID: String, message: String)
    case reconnecting(attempt: Int, reason: String)
    case reconnected
    /// Reconnected while a submission had no answer: it goes out again with its token.
    case reconnectedToResubmit
    case warning(String)
    /// A line of `qxub batch`, shown as it is after `qxub: `.
    case note(String)
    /// A followed array's counts per state (``ArrayProgress/line``): each replaces the one before, so a
    /// terminal shows them as one line rewritten in place.
    case progress(String)
}
