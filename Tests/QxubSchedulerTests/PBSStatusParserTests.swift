import QxubProtocol
import QxubScheduler
import QxubSystem
import Testing

@Suite("PBS Pro qstat parsing, on recorded OpenPBS output")
struct PBSStatusParserTests {
    func info(_ fixture: String, _ id: String) throws -> SchedulerJobInfo {
        let parsed = PBSStatusParser.parse(Fixtures.text("pbs", fixture))
        return try #require(parsed[id], "no \(id) in \(fixture): \(parsed.keys)")
    }

    @Test("states and hosts of queued, held and running jobs")
    func activeStates() throws {
        #expect(try info("qstat-f-queued.txt", "127.vm").phase == .queued)
        #expect(try info("qstat-f-held.txt", "135.vm").phase == .held)
        let running = try info("qstat-f-running.txt", "134.vm")
        #expect(running.phase == .running)
        #expect(running.host == "vm")
        #expect(running.termination == nil)
    }

    @Test("a queued or held job carries the scheduler's comment as the reason it waits; a running one does not")
    func queuedReason() throws {
        let comment = "    comment = Not Running: Insufficient amount of resource: ncpus \n"
        let queued = Fixtures.text("pbs", "qstat-f-queued.txt").replacingAll(
            "    substate = 10\n",
            with: "    substate = 10\n" + comment
        )
        #expect(
            PBSStatusParser.parse(queued)["127.vm"]?.reason == "Not Running: Insufficient amount of resource: ncpus "
        )
        #expect(try info("qstat-f-queued.txt", "127.vm").reason == "", "no comment, no reason")
        let running = Fixtures.text("pbs", "qstat-f-running.txt")
        #expect(try #require(PBSStatusParser.parse(running)["134.vm"]).reason == "")
    }

    @Test(
        "how finished jobs ended",
        arguments: [
            ("qstat-xf-exit0.txt", "128.vm", JobTermination.exited(0)),
            ("qstat-xf-exit3.txt", "132.vm", .exited(3)),
            ("qstat-xf-signal9.txt", "133.vm", .exited(137)),
            ("qstat-xf-signal9-exec.txt", "138.vm", .signaled(9)),
            ("qstat-xf-qdel-held.txt", "135.vm", .killedByScheduler(.deleted, detail: "", ranFirst: false)),
        ]
    )
    func finished(fixture: String, id: String, expected: JobTermination) throws {
        var termination = try #require(try info(fixture, id).termination)
        // Compare without the free-text comment.
        if case .killedByScheduler(let reason, _, let ran) = termination {
            termination = .killedByScheduler(reason, detail: "", ranFirst: ran)
        }
        #expect(termination == expected)
    }

    @Test(
        "an execution host that failed the job (Exit_status -3 to -7) is a node failure; -1 stays another kill",
        arguments: [(-4, true), (-3, true), (-7, true), (-1, false)]
    )
    func executionHostFailures(status: Int, nodeFailure: Bool) throws {
        // The recorded walltime kill, with PBS's exit status for a failure of the execution host instead.
        let text = Fixtures.text("pbs", "qstat-xf-walltime.txt").replacingAll(
            "Exit_status = -29",
            with: "Exit_status = \(status)"
        )
        let termination = try #require(PBSStatusParser.parse(text)["131.vm"]?.termination)
        let (reason, detail) = try #require(termination.schedulerKill, "\(termination)")
        #expect((reason == .nodeFailure) == nodeFailure, "\(reason)")
        #expect(detail.contains("PBS exit status \(status)"))
    }

    @Test("walltime: Exit_status -29, with the comment wrapped over a TAB continuation line")
    func walltime() throws {
        let termination = try #require(try info("qstat-xf-walltime.txt", "131.vm").termination)
        let detail = try #require(termination.schedulerKill?.detail, "\(termination)")
        #expect(termination == .killedByScheduler(.walltime, detail: detail, ranFirst: true))
        #expect(detail.hasSuffix("and exceeded resource walltime"))
    }

    @Test("qdel of a running job is a deletion that ran first (Exit_status 271, substate 91)")
    func qdelRunning() throws {
        let termination = try #require(try info("qstat-xf-qdel-running.txt", "134.vm").termination)
        let detail = try #require(termination.schedulerKill?.detail, "\(termination)")
        #expect(termination == .killedByScheduler(.deleted, detail: detail, ranFirst: true))
    }

    @Test("batched text returns every job; continuation lines are joined without a separator")
    func batched() throws {
        let records = PBSStatusParser.records(Fixtures.text("pbs", "qstat-xf-batched3.txt"))
        #expect(records.map(\.jobID) == ["128.vm", "132.vm", "133.vm"])
        let variables = try #require(records.first?.attributes["Variable_List"])
        #expect(variables.contains("PBS_O_LOGNAME=pbstest,PBS_O_PATH="))
        #expect(!variables.contains("\t"))
    }

    @Test("with an unknown id among known ones, the known jobs are still read")
    func withUnknown() {
        let parsed = PBSStatusParser.parse(Fixtures.text("pbs", "qstat-f-with-unknown.txt"))
        #expect(Set(parsed.keys) == ["134.vm", "135.vm"])
    }

    @Test("array parent and subjobs")
    func arrays() {
        let parsed = PBSStatusParser.parse(Fixtures.text("pbs", "qstat-xf-t-array.txt"))
        #expect(parsed["136[].vm"] != nil)
        #expect(parsed["136[2].vm"]?.phase == .finished)
    }

    @Test("the status command is one batched text query, and rc 153/35 are not failures")
    func statusCommand() {
        let backend = SchedulerBackend(kind: .pbspro)
        #expect(backend.statusCommand(["1.vm", "2.vm"]) == ["qstat", "-xf", "1.vm", "2.vm"])
        for (rc, failed) in [(0, false), (153, false), (35, false), (2, true), (1, true)] {
            let run = CollectedRun(exit: .exited(Int32(rc)), stdout: [], stderr: [])
            #expect(backend.statusFailed(run) == failed, "rc \(rc)")
        }
    }

    @Test("without job history (recorded): qstat -xf says so on stderr for a running job, rc 0; qstat -f shows it")
    func historyOff() {
        let backend = SchedulerBackend(kind: .pbspro)
        #expect(backend.statusCommand(["44.vm"], history: false) == ["qstat", "-f", "44.vm"])
        let xf = CollectedRun(
            exit: .exited(0),
            stdout: Array(Fixtures.text("pbs-real", "hoff-qstat-xf-running.stdout").utf8),
            stderr: Array(Fixtures.text("pbs-real", "hoff-qstat-xf-running.stderr").utf8)
        )
        #expect(backend.saysHistoryDisabled(xf))
        #expect(backend.parseStatus(xf).isEmpty)
        #expect(!backend.statusFailed(xf))
        let f = CollectedRun(
            exit: .exited(0),
            stdout: Array(Fixtures.text("pbs-real", "hoff-qstat-f-running.stdout").utf8),
            stderr: []
        )
        #expect(!backend.saysHistoryDisabled(f))
        #expect(backend.parseStatus(f)["44.vm"]?.phase == .running)
        // A finished job is gone: rc 153, "Unknown Job Id", which is an answer (the job is not there), not a failure.
        let gone = CollectedRun(
            exit: .exited(153),
            stdout: [],
            stderr: Array(Fixtures.text("pbs-real", "hoff-qstat-f-finished.stderr").utf8)
        )
        #expect(!backend.statusFailed(gone))
        #expect(backend.parseStatus(gone).isEmpty)
        #expect(!backend.saysHistoryDisabled(gone))
        #expect(!SchedulerBackend(kind: .slurm).saysHistoryDisabled(xf), "a PBS message means nothing to Slurm")
    }

    @Test("the job log's kill line is the scheduler's verdict (recorded walltime kill, and PBS's other limits)")
    func killVerdict() {
        let backend = SchedulerBackend(kind: .pbspro)
        #expect(
            backend.killVerdict(jobLog: Fixtures.text("pbs-real", "hoff-joboutput-walltime.txt"))
                == .killedByScheduler(.walltime, detail: "walltime 4 exceeded limit 3", ranFirst: true)
        )
        #expect(
            backend.killVerdict(jobLog: Fixtures.text("pbs", "joboutput-walltime.o131.txt"))
                == .killedByScheduler(.walltime, detail: "walltime 5 exceeded limit 3", ranFirst: true)
        )
        #expect(
            backend.killVerdict(jobLog: "x\n=>> PBS: job killed: mem 2097152kb exceeded limit 1048576kb\n")
                == .killedByScheduler(.memory, detail: "mem 2097152kb exceeded limit 1048576kb", ranFirst: true)
        )
        #expect(
            backend.killVerdict(jobLog: "=>> PBS: job killed: cput 61 exceeded limit 60")
                == .killedByScheduler(.other, detail: "cput 61 exceeded limit 60", ranFirst: true)
        )
        #expect(backend.killVerdict(jobLog: Fixtures.text("pbs-real", "hoff-joboutput-ok.log.txt")) == nil)
        #expect(backend.killVerdict(jobLog: "echo '=>> PBS' said nothing\n") == nil)
        let slurm = SchedulerBackend(kind: .slurm)
        #expect(
            slurm.killVerdict(
                jobLog: "slurmstepd: error: *** JOB 7 ON node CANCELLED AT 2026-12-04T10:00:00 DUE TO TIME LIMIT ***\n"
            )
            .map { if case .killedByScheduler(.walltime, _, _) = $0 { true } else { false } } == true
        )
        #expect(
            SchedulerBackend(kind: .local).killVerdict(jobLog: "=>> PBS: job killed: walltime 4 exceeded limit 3")
                == nil
        )
    }

    @Test("qdel of a job in state E (recorded: rc 168) is not a failed cancel: the job has ended")
    func qdelExiting() {
        let backend = SchedulerBackend(kind: .pbspro)
        let run = CollectedRun(
            exit: .exited(Int32(Fixtures.text("pbs-real", "qdel-exiting.rc").trimmingWhitespace())!),
            stdout: [],
            stderr: Array(Fixtures.text("pbs-real", "qdel-exiting.stderr").utf8)
        )
        #expect(backend.cancelError(run, jobID: "47.vm") == nil)
        #expect(backend.cancelFoundJobFinished(run))
        let refused = CollectedRun(
            exit: .exited(1),
            stdout: [],
            stderr: Array("qdel: illegally formed job identifier: x\n".utf8)
        )
        #expect(backend.cancelError(refused, jobID: "x") != nil)
    }

    @Test("the walltime asked for, by --time or by a raw -l walltime=[[H:]M:]S")
    func requestedWalltime() {
        #expect(JobSpec.Resources(walltimeSeconds: 90).requestedWalltimeSeconds == 90)
        #expect(JobSpec.Resources(raw: ["mem=4GB", "walltime=1:02:03"]).requestedWalltimeSeconds == 3723)
        #expect(JobSpec.Resources(raw: ["ncpus=2,walltime=45"]).requestedWalltimeSeconds == 45)
        #expect(JobSpec.Resources(raw: ["walltime=abc"]).requestedWalltimeSeconds == nil)
        #expect(JobSpec.Resources(raw: ["walltime=99999999999999999999:00"]).requestedWalltimeSeconds == nil)
        #expect(JobSpec.Resources().requestedWalltimeSeconds == nil)
    }
}
