import QxubProtocol

/// What a scheduler says about one job.
public struct SchedulerJobInfo: Hashable, Sendable {
    public var jobID: String
    public var phase: JobState.Phase
    /// The execution host once running ("" before).
    public var host: String
    /// The scheduler's own word ("R", "PENDING", "TIMEOUT").
    public var rawState: String
    /// How it ended, when finished and the scheduler can tell; `nil` means "ask the job's records".
    public var termination: JobTermination?

    public init(
        jobID: String,
        phase: JobState.Phase,
        host: String = "",
        rawState: String = "",
        termination: JobTermination? = nil
    ) {
        self.jobID = jobID
        self.phase = phase
        self.host = host
        self.rawState = rawState
        self.termination = termination
    }
}
