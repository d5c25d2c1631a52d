import QxubProtocol

/// What `qxub resources` shows for one finished job: the scheduler's record merged into the job's own, and
/// the line that says where each value came from.
///
/// The scheduler's values are authoritative where it has them (it measures the whole job, the job script
/// only its command); the job's own record fills what the scheduler does not say.
package struct UsageSources: Equatable {
    package var usage: JobUsage
    /// Where the values came from, or why the scheduler's record is missing (no trailing newline).
    package var origin: String

    /// `scheduler` is nil when the agent was not asked or has nothing to ask (the local backend).
    package init(own: JobUsage, scheduler: SchedulerUsage?) {
        guard let scheduler else {
            usage = own
            origin = "from the job's own record"
            return
        }
        let theirs = JobUsage(scheduler)
        guard !theirs.isEmpty else {
            usage = own
            origin =
                "from the job's own record: " + (scheduler.note.isEmpty ? "the scheduler says nothing" : scheduler.note)
            return
        }
        usage = theirs.filled(from: own)
        let names = ["walltime", "cpu time", "mem peak", "cpus"]
        let fromScheduler = [
            theirs.walltimeSeconds != nil, theirs.cpuSeconds != nil, theirs.memoryPeakBytes != nil, theirs.cpus != nil,
        ]
        let mine = [own.walltimeSeconds != nil, own.cpuSeconds != nil, own.memoryPeakBytes != nil, own.cpus != nil]
        let schedulerNames = names.indices.filter { fromScheduler[$0] }.map { names[$0] }
        let ownNames = names.indices.filter { !fromScheduler[$0] && mine[$0] }.map { names[$0] }
        origin =
            "from the scheduler's records: " + schedulerNames.joined(separator: ", ")
            + (ownNames.isEmpty ? "" : "; from the job's own record: " + ownNames.joined(separator: ", "))
    }
}
