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

    @Test("how finished jobs ended", arguments: [
        ("qstat-xf-exit0.txt", "128.vm", JobTermination.exited(0)),
        ("qstat-xf-exit3.txt", "132.vm", .exited(3)),
        ("qstat-xf-signal9.txt", "133.vm", .exited(137)),
        ("qstat-xf-signal9-exec.txt", "138.vm", .signaled(9)),
        ("qstat-xf-qdel-held.txt", "135.vm", .killedByScheduler(.deleted, detail: "", ranFirst: false)),
    ])
    func finished(fixture: String, id: String, expected: JobTermination) throws {
        var termination = try #require(try info(fixture, id).termination)
        // Compare without the free-text comment.
        if case .killedByScheduler(let reason, _, let ran) = termination { termination = .killedByScheduler(reason, detail: "", ranFirst: ran) }
        #expect(termination == expected)
    }

    @Test("an execution host that failed the job (Exit_status -3 to -7) is a node failure; -1 stays another kill", arguments: [(-4, true), (-3, true), (-7, true), (-1, false)])
    func executionHostFailures(status: Int, nodeFailure: Bool) throws {
        // The recorded walltime kill, with PBS's exit status for a failure of the execution host instead.
        let text = Fixtures.text("pbs", "qstat-xf-walltime.txt").replacingAll("Exit_status = -29", with: "Exit_status = \(status)")
        let termination = try #require(PBSStatusParser.parse(text)["131.vm"]?.termination)
        guard case .killedByScheduler(let reason, let detail, _) = termination else {
            Issue.record("\(termination)")
            return
        }
        #expect((reason == .nodeFailure) == nodeFailure, "\(reason)")
        #expect(detail.contains("PBS exit status \(status)"))
    }

    @Test("walltime: Exit_status -29, with the comment wrapped over a TAB continuation line")
    func walltime() throws {
        let termination = try info("qstat-xf-walltime.txt", "131.vm").termination
        guard case .killedByScheduler(.walltime, let detail, true) = termination else {
            Issue.record("got \(String(describing: termination))")
            return
        }
        #expect(detail.hasSuffix("and exceeded resource walltime"))
    }

    @Test("qdel of a running job is a deletion that ran first (Exit_status 271, substate 91)")
    func qdelRunning() throws {
        guard case .killedByScheduler(.deleted, _, true) = try info("qstat-xf-qdel-running.txt", "134.vm").termination else {
            Issue.record("not a deletion")
            return
        }
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
}
