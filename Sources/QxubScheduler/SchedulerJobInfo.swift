import QxubProtocol

/// What a scheduler says about one job.
package struct SchedulerJobInfo: Hashable, Sendable {
    package var jobID: String
    package var phase: JobState.Phase
    /// The execution host once running ("" before).
    package var host: String
    /// The scheduler's own word ("R", "PENDING", "TIMEOUT").
    package var rawState: String
    /// How it ended, when finished and the scheduler can tell; `nil` means "ask the job's records".
    package var termination: JobTermination?
    /// Why a queued job waits, in the scheduler's words (PBS `comment`, Slurm `Reason`); "" when it gives none.
    package var reason: String

    package init(
        jobID: String,
        phase: JobState.Phase,
        host: String = "",
        rawState: String = "",
        termination: JobTermination? = nil,
        reason: String = ""
    ) {
        self.jobID = jobID
        self.phase = phase
        self.host = host
        self.rawState = rawState
        self.termination = termination
        self.reason = reason
    }
}
