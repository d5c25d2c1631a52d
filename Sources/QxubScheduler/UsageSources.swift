import QxubProtocol

/// What `qxub resources` shows for one finished job: the scheduler's record merged into the job's own, and
/// the line that says where each value came from.
///
/// The scheduler's values are authoritative where it has them (it measures the whole job, the job script
/// only its command), but for a zero where the job's own record has a value; the job's own record fills
/// what the scheduler does not say.
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
        // A zero from the scheduler is most often a sample taken too soon (PBS samples cput and mem
        // periodically: a short job shows 00:00:00 and 0kb), so a value of the job's own wins over it.
        func pick<Value: Numeric>(_ theirs: Value?, _ mine: Value?) -> (Value?, Bool) {
            if let theirs, theirs != 0 || mine == nil { return (theirs, true) }
            return (mine, false)
        }
        let walltime = pick(theirs.walltimeSeconds, own.walltimeSeconds)
        let cpu = pick(theirs.cpuSeconds, own.cpuSeconds)
        let memory = pick(theirs.memoryPeakBytes, own.memoryPeakBytes)
        let cpus = pick(theirs.cpus, own.cpus)
        usage = JobUsage(walltimeSeconds: walltime.0, cpuSeconds: cpu.0, memoryPeakBytes: memory.0, cpus: cpus.0)
        let names = ["walltime", "cpu time", "mem peak", "cpus"]
        let fromScheduler = [walltime.1, cpu.1, memory.1, cpus.1]
        let known = [walltime.0 != nil, cpu.0 != nil, memory.0 != nil, cpus.0 != nil]
        let schedulerNames = names.indices.filter { fromScheduler[$0] }.map { names[$0] }
        let ownNames = names.indices.filter { !fromScheduler[$0] && known[$0] }.map { names[$0] }
        origin =
            "from the scheduler's records: " + schedulerNames.joined(separator: ", ")
            + (ownNames.isEmpty ? "" : "; from the job's own record: " + ownNames.joined(separator: ", "))
    }
}
