import QxubProtocol
import QxubScheduler
import QxubSystem
import Testing

@Suite("Slurm parsing, on recorded Slurm 22.05 output")
struct SlurmStatusParserTests {
    /// The jobs of the recording in Tests/Fixtures/slurm-real (record.sh there), by scenario.
    static let ids = Fixtures.ids("slurm-real")

    static func id(_ scenario: String) -> String { ids[scenario] ?? "missing \(scenario) in slurm-real/ids.txt" }

    @Test("the recordings ran the very squeue command qxub runs (else: re-record with record.sh)")
    func productionCommand() {
        let backend = SchedulerBackend(kind: .slurm)
        for name in ["squeue-active", "squeue-ended"] {
            let asked = ["ok", "exit3", "sig9", "running", "pending", "held", "timeout"].map(Self.id)
            #expect(Fixtures.argv("slurm-real", name) == backend.statusCommand(asked), "\(name)")
        }
        #expect(
            Fixtures.argv("slurm-real", "squeue-with-unknown") == backend.statusCommand([Self.id("running"), "999999"])
        )
        #expect(Fixtures.argv("slurm-real", "squeue-unknown-only") == backend.statusCommand(["999999"]))
    }

    @Test("the production squeue query while jobs run, wait for resources, are held and have ended")
    func squeueActive() {
        let backend = SchedulerBackend(kind: .slurm)
        let run = Fixtures.run("slurm-real", "squeue-active")
        #expect(!backend.statusFailed(run))
        let expected = [
            Self.id("ok"): SchedulerJobInfo(
                jobID: Self.id("ok"),
                phase: .finished,
                host: "localhost",
                rawState: "COMPLETED",
                termination: .exited(0)
            ),
            // FAILED says neither the exit status nor the signal: the job's exit record (or scontrol) does.
            Self.id("exit3"): SchedulerJobInfo(
                jobID: Self.id("exit3"),
                phase: .finished,
                host: "localhost",
                rawState: "FAILED"
            ),
            Self.id("sig9"): SchedulerJobInfo(
                jobID: Self.id("sig9"),
                phase: .finished,
                host: "localhost",
                rawState: "FAILED"
            ),
            // The reason a job waits (squeue's %r) is kept for the status line.
            Self.id("pending"): SchedulerJobInfo(
                jobID: Self.id("pending"),
                phase: .queued,
                rawState: "PENDING",
                reason: "Resources"
            ),
            Self.id("held"): SchedulerJobInfo(
                jobID: Self.id("held"),
                phase: .held,
                rawState: "PENDING",
                reason: "JobHeldUser"
            ),
            Self.id("timeout"): SchedulerJobInfo(
                jobID: Self.id("timeout"),
                phase: .running,
                host: "localhost",
                rawState: "RUNNING"
            ),
            Self.id("running"): SchedulerJobInfo(
                jobID: Self.id("running"),
                phase: .running,
                host: "localhost",
                rawState: "RUNNING"
            ),
        ]
        #expect(backend.parseStatus(run) == expected)
    }

    @Test("the production squeue query once jobs were cancelled (running and pending) and one hit its time limit")
    func squeueEnded() {
        let backend = SchedulerBackend(kind: .slurm)
        let parsed = backend.parseStatus(Fixtures.run("slurm-real", "squeue-ended"))
        let expected: [String: JobTermination?] = [
            Self.id("running"): .killedByScheduler(.deleted, detail: "", ranFirst: true),
            Self.id("pending"): .killedByScheduler(.deleted, detail: "", ranFirst: false),
            Self.id("ok"): .exited(0),
            Self.id("exit3"): nil,
            Self.id("sig9"): nil,
            Self.id("held"): nil,
            Self.id("timeout"): .killedByScheduler(.walltime, detail: "TimeLimit", ranFirst: true),
        ]
        #expect(parsed.mapValues(\.termination) == expected)
        #expect(parsed[Self.id("held")]?.phase == .held)
        #expect(parsed.filter { $0.key != Self.id("held") }.values.allSatisfy { $0.phase == .finished })
    }

    @Test("ids Slurm does not know: left out beside known ones; alone, rc 1, which is an answer, not a failure")
    func squeueUnknown() {
        let backend = SchedulerBackend(kind: .slurm)
        let mixed = Fixtures.run("slurm-real", "squeue-with-unknown")
        #expect(!backend.statusFailed(mixed))
        #expect(Set(backend.parseStatus(mixed).keys) == [Self.id("running")])
        let alone = Fixtures.run("slurm-real", "squeue-unknown-only")
        #expect(alone.exit == .exited(1))
        #expect(!backend.statusFailed(alone), "no listed job is known any more: they are all gone")
        #expect(backend.parseStatus(alone).isEmpty)
        let broken = CollectedRun(
            exit: .exited(1),
            stdout: [],
            stderr: Array("squeue: error: Unable to contact slurm controller\n".utf8)
        )
        #expect(backend.statusFailed(broken))
    }

    @Test("the older '%i %T' recordings: batched states, including held and finished")
    func squeuePlainFormat() {
        let active = SlurmStatusParser.parseSqueue(Fixtures.text("slurm", "squeue-batched.txt"))
        #expect(active["6"]?.phase == .queued)
        #expect(active["5"]?.phase == .running)
        let finished = SlurmStatusParser.parseSqueue(Fixtures.text("slurm", "squeue-batched-all-states.txt"))
        #expect(finished["2"]?.termination == .exited(0))
        #expect(finished["3"]?.phase == .finished)
        #expect(finished["3"]?.termination == nil, "FAILED needs the exit record or scontrol")
        #expect(finished["5"]?.termination == .killedByScheduler(.deleted, detail: "", ranFirst: false))
        let array = SlurmStatusParser.parseSqueue(Fixtures.text("slurm", "squeue-array-all-states.txt"))
        #expect(Set(array.keys) == ["7_1", "7_2", "7_3"])
    }

    @Test(
        "scontrol: every recorded state",
        arguments: [
            ("scontrol-completed.txt", "2", JobState.Phase.finished, "localhost", JobTermination.exited(0)),
            ("scontrol-failed-exit3.txt", "3", .finished, "localhost", .exited(3)),
            ("scontrol-signal9.txt", "4", .finished, "localhost", .signaled(9)),
            (
                "scontrol-timeout.txt", "1", .finished, "localhost",
                .killedByScheduler(.walltime, detail: "TimeLimit", ranFirst: true)
            ),
            (
                "scontrol-cancelled-running.txt", "5", .finished, "localhost",
                .killedByScheduler(.deleted, detail: "", ranFirst: true)
            ),
            (
                "scontrol-cancelled-pending.txt", "6", .finished, "",
                .killedByScheduler(.deleted, detail: "", ranFirst: false)
            ),
            ("scontrol-running.txt", "5", .running, "localhost", nil),
            ("scontrol-pending-held.txt", "6", .held, "", nil),
        ] as [(String, String, JobState.Phase, String, JobTermination?)]
    )
    func scontrol(fixture: String, id: String, phase: JobState.Phase, host: String, termination: JobTermination?) {
        let parsed = SlurmStatusParser.parseScontrol(Fixtures.text("slurm", fixture))
        #expect(Set(parsed.keys) == [id])
        #expect(parsed[id]?.phase == phase)
        #expect(parsed[id]?.host == host)
        #expect(parsed[id]?.termination == termination)
    }

    @Test("scontrol on an array prints one record per task; on one task, that task; on an unknown id, nothing")
    func scontrolArray() {
        let parsed = SlurmStatusParser.parseScontrol(Fixtures.text("slurm", "scontrol-array.txt"))
        #expect(Set(parsed.keys) == ["7_1", "7_2", "7_3"])
        #expect(
            Set(SlurmStatusParser.parseScontrol(Fixtures.text("slurm", "scontrol-array-task2.txt")).keys) == ["7_2"]
        )
        #expect(SlurmStatusParser.parseScontrol(Fixtures.text("slurm", "scontrol-unknown.txt")).isEmpty)
    }

    @Test("the job log's own line on a time limit is the walltime verdict; a cancel's line and a signal are not")
    func killVerdict() {
        let backend = SchedulerBackend(kind: .slurm)
        let log = Fixtures.text("slurm-real", "joboutput-timeout.txt")
        let line = String(log.split(separator: "\n").last ?? "")
        #expect(line.hasSuffix("DUE TO TIME LIMIT ***"))
        #expect(backend.killVerdict(jobLog: log) == .killedByScheduler(.walltime, detail: line, ranFirst: true))
        #expect(backend.killVerdict(jobLog: Fixtures.text("slurm-real", "joboutput-cancelled-running.txt")) == nil)
        #expect(backend.killVerdict(jobLog: Fixtures.text("slurm-real", "joboutput-sig9.txt")) == nil)
    }

    @Test("sbatch: job ids from --parsable and plain output; refusals carry the message and a hint")
    func submission() throws {
        let backend = SchedulerBackend(kind: .slurm)
        #expect(try backend.submittedJobID(Fixtures.run("slurm", "sbatch-ok")) == "2")
        #expect(try backend.submittedJobID(Fixtures.run("slurm", "sbatch-ok-plain")) == "3")
        for (name, hint) in [
            ("sbatch-badpartition", "check the partition (-q); `sinfo -s` lists them"),
            ("sbatch-badtime", "give the time as 2h30m, 90m or HH:MM:SS"),
            ("sbatch-badmem", "give memory as 4GB, 512MB or 16g"),
        ] {
            // sbatch's own words, all of them: the recorded stderr.
            let expected = SchedulerError(
                .submitFailed,
                Fixtures.text("slurm", name + ".stderr").trimmingWhitespace(),
                hint: hint
            )
            #expect(throws: expected, "\(name)") { try backend.submittedJobID(Fixtures.run("slurm", name)) }
        }
    }

    @Test("qsub: the id, and the recorded refusals")
    func qsub() throws {
        let backend = SchedulerBackend(kind: .pbspro)
        #expect(try backend.submittedJobID(Fixtures.run("pbs", "qsub-ok")) == "128.vm")
        for (name, message, hint) in [
            ("qsub-badqueue", "qsub: Unknown queue", "check the queue name (-q); `qstat -Q` lists the queues"),
            (
                "qsub-badwalltime", "qsub: Illegal attribute or resource value Resource_List.walltime",
                "give the time as 2h30m, 90m or HH:MM:SS"
            ),
            (
                "qsub-badresource", "qsub: Unknown resource Resource_List.nosuch",
                "check the -l resource names this cluster accepts"
            ),
        ] {
            #expect(throws: SchedulerError(.submitFailed, message, hint: hint), "\(name)") {
                try backend.submittedJobID(Fixtures.run("pbs", name))
            }
        }
    }

    @Test(
        "scancel as qxub runs it: silent and rc 0 for a running, a pending, a finished job and an unknown id",
        arguments: ["slurm-real", "slurm"],
        ["scancel-running", "scancel-pending", "scancel-finished", "scancel-unknown"]
    )
    func scancelAccepted(directory: String, recording: String) {
        let backend = SchedulerBackend(kind: .slurm)
        let run = Fixtures.run(directory, recording)
        // The first recording (by hand, Tests/Fixtures/slurm) kept no command line; record.sh keeps it.
        var jobID = "1"
        if directory == "slurm-real" {
            let argv = Fixtures.argv(directory, recording)
            jobID = argv.last ?? ""
            #expect(argv == backend.cancelCommand(jobID))
        }
        #expect(run.exit == .exited(0) && run.stdout.isEmpty && run.stderr.isEmpty)
        #expect(backend.cancelError(run, jobID: jobID) == nil)
        // scancel says the same for a job that had already finished: only squeue can tell (the job's
        // state, then its exit record), never scancel.
        #expect(!backend.cancelFoundJobFinished(run))
    }

    @Test("scancel of another user's job: rc 210 and Slurm's refusal, which qxub passes on with a hint")
    func scancelRefused() {
        let backend = SchedulerBackend(kind: .slurm)
        let run = Fixtures.run("slurm-real", "scancel-other-user")
        let jobID = Self.id("root")
        #expect(Fixtures.argv("slurm-real", "scancel-other-user") == backend.cancelCommand(jobID))
        #expect(run.exit == .exited(210))
        #expect(
            backend.cancelError(run, jobID: jobID)
                == SchedulerError(
                    .cancelFailed,
                    "scancel: error: Kill job error on job id \(jobID): Access/permission denied",
                    hint: "try `scancel \(jobID)` yourself"
                )
        )
        #expect(!backend.cancelFoundJobFinished(run))
    }

    @Test("qdel: a running job, an unknown id (an error) and a finished one (accepted, but no longer active)")
    func qdel() {
        let backend = SchedulerBackend(kind: .pbspro)
        #expect(backend.cancelError(Fixtures.run("pbs", "qdel-running"), jobID: "1") == nil)
        #expect(!backend.cancelFoundJobFinished(Fixtures.run("pbs", "qdel-running")))
        #expect(
            backend.cancelError(Fixtures.run("pbs", "qdel-unknown"), jobID: "99999.vm")
                == SchedulerError(
                    .cancelFailed,
                    Fixtures.text("pbs", "qdel-unknown.stderr").trimmingWhitespace(),
                    hint: "try `qdel 99999.vm` yourself"
                )
        )
        #expect(
            !backend.cancelFoundJobFinished(Fixtures.run("pbs", "qdel-unknown")),
            "an unknown job is an error, not a finished one"
        )
        // qdel exits 35 for a job that has finished: accepted, but it was no longer active.
        #expect(backend.cancelError(Fixtures.run("pbs", "qdel-finished"), jobID: "1") == nil)
        #expect(backend.cancelFoundJobFinished(Fixtures.run("pbs", "qdel-finished")))
    }
}
