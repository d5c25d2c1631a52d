import QxubProtocol
import QxubScheduler
import QxubSystem
import Testing

@Suite("Slurm parsing, on recorded Slurm 22.05 output")
struct SlurmStatusParserTests {
    @Test("squeue batched states, including held and finished")
    func squeue() {
        let active = SlurmStatusParser.parseSqueue(Fixtures.text("slurm", "squeue-batched.txt"))
        #expect(active["6"]?.phase == .queued)
        #expect(active["5"]?.phase == .running)
        let finished = SlurmStatusParser.parseSqueue(Fixtures.text("slurm", "squeue-batched-all-states.txt"))
        #expect(finished["2"]?.termination == .exited(0))
        #expect(finished["3"]?.phase == .finished)
        #expect(finished["3"]?.termination == nil, "FAILED needs the exit record or scontrol")
        guard case .killedByScheduler(.deleted, _, _) = finished["5"]?.termination else {
            Issue.record("CANCELLED should be a deletion")
            return
        }
        let array = SlurmStatusParser.parseSqueue(Fixtures.text("slurm", "squeue-array-all-states.txt"))
        #expect(Set(array.keys) == ["7_1", "7_2", "7_3"])
    }

    @Test("the squeue format qxub asks for: id|state|nodes|reason")
    func pipeFormat() {
        let parsed = SlurmStatusParser.parseSqueue(
            "12|PENDING||JobHeldUser\n13|RUNNING|node7|None\n14|TIMEOUT|node7|TimeLimit\n"
        )
        #expect(parsed["12"]?.phase == .held)
        #expect(parsed["13"]?.host == "node7")
        guard case .killedByScheduler(.walltime, _, true) = parsed["14"]?.termination else {
            Issue.record("TIMEOUT should be walltime")
            return
        }
    }

    @Test(
        "scontrol: exit codes, signals, timeout, cancellations",
        arguments: [
            ("scontrol-completed.txt", "2", JobTermination.exited(0)),
            ("scontrol-failed-exit3.txt", "3", .exited(3)),
            ("scontrol-signal9.txt", "4", .signaled(9)),
        ]
    )
    func scontrol(fixture: String, id: String, expected: JobTermination) {
        let parsed = SlurmStatusParser.parseScontrol(Fixtures.text("slurm", fixture))
        #expect(parsed[id]?.termination == expected)
    }

    @Test("scontrol timeout and cancelled-while-pending")
    func scontrolKills() {
        let timeout = SlurmStatusParser.parseScontrol(Fixtures.text("slurm", "scontrol-timeout.txt"))["1"]
        guard case .killedByScheduler(.walltime, _, true) = timeout?.termination else {
            Issue.record("got \(String(describing: timeout))")
            return
        }
        let pending = SlurmStatusParser.parseScontrol(Fixtures.text("slurm", "scontrol-cancelled-pending.txt"))["6"]
        guard case .killedByScheduler(.deleted, _, false) = pending?.termination else {
            Issue.record("got \(String(describing: pending))")
            return
        }
    }

    @Test("scontrol on an array prints one record per task")
    func scontrolArray() {
        let parsed = SlurmStatusParser.parseScontrol(Fixtures.text("slurm", "scontrol-array.txt"))
        #expect(Set(parsed.keys) == ["7_1", "7_2", "7_3"])
    }

    @Test("sbatch: job ids from --parsable and plain output; refusals carry the message and a hint")
    func submission() throws {
        let backend = SchedulerBackend(kind: .slurm)
        func run(_ name: String) -> CollectedRun {
            let rc = Int32(Fixtures.text("slurm", name + ".rc").trimmingWhitespace())!
            return CollectedRun(
                exit: .exited(rc),
                stdout: Array(Fixtures.text("slurm", name + ".stdout").utf8),
                stderr: Array(Fixtures.text("slurm", name + ".stderr").utf8)
            )
        }
        #expect(try backend.submittedJobID(run("sbatch-ok")) == "2")
        #expect(try backend.submittedJobID(run("sbatch-ok-plain")) == "3")
        let error = #expect(throws: SchedulerError.self) { try backend.submittedJobID(run("sbatch-badpartition")) }
        #expect(error?.message.contains("invalid partition specified: nosuch") == true)
        #expect(error?.hint.contains("sinfo") == true)
        let time = #expect(throws: SchedulerError.self) { try backend.submittedJobID(run("sbatch-badtime")) }
        #expect(time?.hint.contains("HH:MM:SS") == true)
    }

    @Test("qsub: the id, and the recorded refusals")
    func qsub() throws {
        let backend = SchedulerBackend(kind: .pbspro)
        func run(_ name: String) -> CollectedRun {
            let rc = Int32(Fixtures.text("pbs", name + ".rc").trimmingWhitespace())!
            return CollectedRun(
                exit: .exited(rc),
                stdout: Array(Fixtures.text("pbs", name + ".stdout").utf8),
                stderr: Array(Fixtures.text("pbs", name + ".stderr").utf8)
            )
        }
        #expect(try backend.submittedJobID(run("qsub-ok")) == "128.vm")
        for (name, hint) in [
            ("qsub-badqueue", "qstat -Q"), ("qsub-badwalltime", "HH:MM:SS"), ("qsub-badresource", "-l"),
        ] {
            let error = #expect(throws: SchedulerError.self) { try backend.submittedJobID(run(name)) }
            #expect(error?.hint.contains(hint) == true, "\(name): \(String(describing: error))")
        }
    }

    @Test("cancel: unknown ids and finished jobs", arguments: ["pbs", "slurm"])
    func cancel(scheduler: String) {
        let backend = SchedulerBackend(kind: scheduler == "pbs" ? .pbspro : .slurm)
        func run(_ name: String) -> CollectedRun {
            let rc = Int32(Fixtures.text(scheduler, name + ".rc").trimmingWhitespace())!
            return CollectedRun(
                exit: .exited(rc),
                stdout: [],
                stderr: Array(Fixtures.text(scheduler, name + ".stderr").utf8)
            )
        }
        let prefix = scheduler == "pbs" ? "qdel" : "scancel"
        #expect(backend.cancelError(run("\(prefix)-running"), jobID: "1") == nil)
        #expect(backend.cancelError(run("\(prefix)-finished"), jobID: "1") == nil)
        #expect(!backend.cancelFoundJobFinished(run("\(prefix)-running")))
        if scheduler == "pbs" {
            #expect(backend.cancelError(run("qdel-unknown"), jobID: "99999.vm") != nil)
            #expect(
                !backend.cancelFoundJobFinished(run("qdel-unknown")),
                "an unknown job is an error, not a finished one"
            )
            // qdel exits 35 for a job that has finished: accepted, but it was no longer active.
            #expect(backend.cancelFoundJobFinished(run("qdel-finished")))
        }
    }
}
