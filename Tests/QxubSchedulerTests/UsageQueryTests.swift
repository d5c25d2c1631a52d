import QxubProtocol
import QxubScheduler
import QxubSystem
import Testing

@Suite("the scheduler's records of what finished jobs used: the agent's question, its answer per job, the merge")
struct UsageQueryTests {
    private func run(_ code: Int32, stdout: String = "", stderr: String = "") -> CollectedRun {
        CollectedRun(exit: .exited(code), stdout: Array(stdout.utf8), stderr: Array(stderr.utf8))
    }

    @Test(
        "one command per scheduler for all the jobs; none for the local backend",
        arguments: [
            (SchedulerKind.pbspro, ["qstat", "-xf", "7.vm", "8.vm"]),
            (.slurm, ["sacct", "-j", "7.vm,8.vm", "-P", "-n", "-o", "JobID,Elapsed,TotalCPU,MaxRSS,AllocCPUS"]),
        ]
    )
    func command(kind: SchedulerKind, expected: [String]) {
        #expect(UsageQuery(kind: kind).command(["7.vm", "8.vm"]) == expected)
        #expect(UsageQuery(kind: .local).command(["7"]) == nil)
    }

    @Test("qstat -xf of two jobs: each job's resources_used by its Job Id; an id it does not list is gone")
    func pbsJobs() {
        let text = """
            Job Id: 7.vm
                Job_Name = a
                resources_used.cput = 00:01:02
                resources_used.mem = 1024kb
                resources_used.ncpus = 2
                resources_used.walltime = 00:02:00
                job_state = F
            Job Id: 8.vm
                resources_used.walltime = 01:00:00
            """
        let answer = UsageQuery(kind: .pbspro).answer(["7.vm", "8.vm", "9.vm"], run(153, stdout: text))
        #expect(
            answer["7.vm"]
                == SchedulerUsage(walltimeMillis: 120_000, cpuMillis: 62_000, memoryPeakBytes: 1 << 20, cpus: 2)
        )
        #expect(answer["8.vm"] == SchedulerUsage(walltimeMillis: 3_600_000))
        #expect(answer["9.vm"] == SchedulerUsage(note: "the scheduler no longer has job 9.vm"))
    }

    @Test(
        "no record: why, per job",
        arguments: [
            (
                SchedulerKind.pbspro, 0, "qstat: PBS is not configured to maintain job history 7.vm\n",
                "the scheduler no longer has job 7.vm (PBS keeps no job history here)"
            ),
            (
                .slurm, 1, "sacct: error: Slurm accounting storage is disabled\n",
                "the scheduler's records of job 7.vm cannot be read (sacct: error: Slurm accounting storage is disabled)"
            ),
            (.slurm, 0, "", "the scheduler no longer has job 7.vm"),
            (
                .pbspro, 2, "qstat: cannot connect to server vm\n",
                "the scheduler's records of job 7.vm cannot be read (qstat: cannot connect to server vm)"
            ),
        ]
    )
    func noRecord(kind: SchedulerKind, code: Int32, stderr: String, note: String) {
        let answer = UsageQuery(kind: kind).answer(["7.vm"], run(code, stderr: stderr))
        #expect(answer == ["7.vm": SchedulerUsage(note: note)])
    }

    @Test("sacct of two jobs: each job's line and the largest MaxRSS over its steps")
    func sacctJobs() {
        let text = """
            7|00:01:00|00:00:30||2
            7.batch|00:01:00|00:00:30|2048K|2
            7.0|00:00:50|00:00:20|4096K|2
            8|00:00:10|00:00:01||1
            """
        let answer = UsageQuery(kind: .slurm).answer(["7", "8"], run(0, stdout: text))
        #expect(
            answer["7"] == SchedulerUsage(walltimeMillis: 60_000, cpuMillis: 30_000, memoryPeakBytes: 4 << 20, cpus: 2)
        )
        #expect(answer["8"] == SchedulerUsage(walltimeMillis: 10_000, cpuMillis: 1000, cpus: 1))
    }

    @Test(
        "the merge: the scheduler's values win (but a zero over a value of the job's own), the job's own fill the rest",
        arguments: [
            (
                SchedulerUsage(walltimeMillis: 60_000, cpuMillis: 30_000, cpus: 2),
                JobUsage(walltimeSeconds: 58, cpuSeconds: 29, memoryPeakBytes: 5, cpus: 2),
                JobUsage(walltimeSeconds: 60, cpuSeconds: 30, memoryPeakBytes: 5, cpus: 2),
                "from the scheduler's records: walltime, cpu time, cpus; from the job's own record: mem peak"
            ),
            (
                SchedulerUsage(note: "the scheduler no longer has job 7.vm (PBS keeps no job history here)"),
                JobUsage(walltimeSeconds: 58),
                JobUsage(walltimeSeconds: 58),
                "from the job's own record: the scheduler no longer has job 7.vm (PBS keeps no job history here)"
            ),
            (nil, JobUsage(cpus: 1), JobUsage(cpus: 1), "from the job's own record"),
            // PBS's sample of a short job: 0 s of cpu and 0kb; the job's own cpu time wins over the zero.
            (
                SchedulerUsage(walltimeMillis: 2000, cpuMillis: 0, memoryPeakBytes: 0, cpus: 2),
                JobUsage(walltimeSeconds: 2, cpuSeconds: 1.5, cpus: 2),
                JobUsage(walltimeSeconds: 2, cpuSeconds: 1.5, memoryPeakBytes: 0, cpus: 2),
                "from the scheduler's records: walltime, mem peak, cpus; from the job's own record: cpu time"
            ),
        ]
    )
    func merge(scheduler: SchedulerUsage?, own: JobUsage, merged: JobUsage, origin: String) {
        let sources = UsageSources(own: own, scheduler: scheduler)
        #expect(sources.usage == merged)
        #expect(sources.origin == origin)
    }
}
