import QxubSystem

/// What a followed job's session said about it, gathered for the notice of its end.
package struct JobEnding: Sendable {
    private var jobID: String?
    private var startedAt: Double?
    private var submittedAt: Double?
    private var endedAt: Double?
    private var code: Int32?

    package init() {}

    /// Takes one status of the session, seen at `now` (seconds on any steady clock).
    package mutating func observe(_ status: SessionStatus, now: Double = MonotonicClock.now()) {
        switch status {
        case .submitted(let id, _):
            jobID = id
            submittedAt = now
        case .state(let state) where state.phase == .running:
            startedAt = startedAt ?? now
        case .finished(let code, _):
            self.code = code
            endedAt = now
        default:
            break
        }
    }

    /// The notice, once the job was seen to end; nil for a job left running, or never submitted.
    /// Elapsed counts from the job's start as qxub saw it, else from its submission (a job that ended before
    /// it was seen running).
    package func notice(name: String?, platform: String) -> JobEndNotice? {
        guard let jobID, let code, let endedAt else { return nil }
        let start = startedAt ?? submittedAt
        return JobEndNotice(
            jobID: jobID,
            name: name,
            platform: platform,
            exitCode: code,
            elapsedSeconds: start.map { Int((endedAt - $0).rounded()) }
        )
    }
}
