import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("qxub exec against a real single-node Slurm")
struct SlurmBackendTests {
    func sandbox(_ label: String) throws -> Sandbox {
        let environment = try Components.slurm()
        let sandbox = try Sandbox("slurm-" + label, fakeBinaries: fakeActivationTools)
        for (key, value) in environment { sandbox.environment[key] = value }
        return sandbox
    }

    func scenarios(_ label: String) throws -> ExecScenarios {
        ExecScenarios(backend: "slurm", sandbox: try sandbox(label))
    }

    @Test("exit statuses 0 and 7; stdout and stderr kept apart") func exitCodes() throws {
        try scenarios("codes").exitCodes()
    }
    @Test("a signal death exits 128+N") func signal() throws { try scenarios("signal").signal() }
    @Test("two or more arguments are an exact argv") func argv() throws { try scenarios("argv").argvIsExact() }
    @Test("output byte for byte, 10 MB included") func bytes() throws { try scenarios("bytes").byteExactOutput() }
    @Test("--pre and --post") func prePost() throws { try scenarios("prepost").prePost() }
    @Test("hostile values") func hostile() throws { try scenarios("hostile").hostileValues() }
    @Test("a missing output directory") func outdir() throws { try scenarios("outdir").missingOutputDirectory() }
    @Test("failing conda activation") func conda() throws { try scenarios("conda").condaFailure() }
    @Test("modules") func modules() throws { try scenarios("modules").modules() }
    @Test("array jobs: each subjob has its own records and output") func array() throws {
        try scenarios("array").arrayTerse()
    }
    @Test("--array followed: [index]-tagged lines, counts per state, the failed subjob's status, attach of one")
    func arrayFollowed() throws { try scenarios("arrayfollow").arrayFollowed() }
    @Test("Ctrl-C while following an array: one `scancel ID` for the whole array, every subjob cancelled, 130")
    func arrayCancelled() throws {
        try scenarios("arraycancel").arrayCancelled(cancelCommand: "scancel")
    }
    @Test("containers: a missing image stops the job; binds reach the runtime") func container() throws {
        try scenarios("container").container()
    }
    @Test("Ctrl-C cancels the running job") func cancel() throws { try scenarios("cancel").cancelWhileRunning() }

    @Test("Ctrl-C while queued cancels the job before it starts")
    func cancelQueued() throws {
        let sandbox = try sandbox("queued")
        // Fill the node's 8 CPUs so the next job must wait.
        let blocker = try runCollectingOutput(
            ["sbatch", "--parsable", "-c", "8", "-o", "/dev/null", "--wrap", "sleep 120"],
            environment: sandbox.environmentList
        )
        let blockerID = blocker.stdoutText.trimmingWhitespaceForTests()
        #expect(blocker.exit == .exited(0), "\(blocker.stderrText)")
        defer { _ = try? runCollectingOutput(["scancel", blockerID], environment: sandbox.environmentList) }
        // The blocker may itself wait for other tests' jobs on the node (suites run in parallel); either way
        // ours queues behind it, which Slurm's own PENDING below confirms.
        #expect(["RUNNING", "PENDING"].contains(state(of: blockerID, in: sandbox)), "Slurm took the blocker")
        let child = try sandbox.start(["exec", "--backend", "slurm", "--", "echo should never run"])
        let id = try #require(sandbox.submittedJobID())
        // Ctrl-C once qxub knows the job (it records it in the history as soon as the agent names it).
        #expect(sandbox.wait(timeout: 30) { sandbox.historyLists(id) }, "qxub never recorded \(id)")
        #expect(state(of: id, in: sandbox) == "PENDING", "Slurm holds the job back: the node is full")
        #expect(
            !sandbox.jobDirectories.contains { FileSystem.exists($0 + "/started") },
            "the job should still be queued"
        )
        kill(-child.pid, SIGINT)  // the whole group, as a terminal does
        let run = collect(child, timeout: 60)
        #expect(run.exit == .exited(130), "\(run.stderrText)")
        #expect(run.stderrText.contains("cancelled before it started"))
        #expect(run.stdoutText.isEmpty)
    }

    /// Slurm's state of `jobID` (`RUNNING`, `PENDING`...), "" when Slurm does not know it.
    func state(of jobID: String, in sandbox: Sandbox) -> String {
        let run = try? runCollectingOutput(
            ["squeue", "-h", "-t", "all", "-o", "%T", "-j", jobID],
            environment: sandbox.environmentList
        )
        return run?.stdoutText.trimmingWhitespaceForTests() ?? ""
    }

    @Test("a job deleted by someone else (scancel) ends qxub with 143 and says so")
    func deletedFromOutside() throws {
        let sandbox = try sandbox("deleted")
        let child = try sandbox.start(["exec", "--backend", "slurm", "--", "echo running; sleep 300"])
        let started = sandbox.wait(timeout: 60) {
            sandbox.jobDirectories.contains { FileSystem.exists($0 + "/started") }
        }
        #expect(started)
        let id = try #require(sandbox.submittedJobID())
        _ = try runCollectingOutput(["scancel", id], environment: sandbox.environmentList)
        let run = collect(child, timeout: 90)
        #expect(run.exit == .exited(143), "\(run.stderrText)")
        #expect(run.stderrText.contains("deleted while it ran"))
        #expect(run.stdoutText == "running\n")
    }

    @Test("a walltime kill exits 124 and says so (Slurm's shortest limit is one minute)")
    func walltime() throws {
        let sandbox = try sandbox("walltime")
        let run = try sandbox.qxub(
            ["exec", "--backend", "slurm", "--time", "1m", "--", "echo sleeping past the limit; sleep 600"],
            timeout: 300
        )
        #expect(run.exit == .exited(124), "\(run.stderrText)")
        #expect(run.stderrText.contains("walltime exceeded"))
        #expect(run.stdoutText == "sleeping past the limit\n")
    }

    @Test("a rejected submission exits 125 with Slurm's message and a hint")
    func rejected() throws {
        let sandbox = try sandbox("rejected")
        let run = try sandbox.qxub(["exec", "--backend", "slurm", "-q", "nosuch", "--", "echo never"])
        #expect(run.exit == .exited(125), "\(run.stderrText)")
        #expect(run.stderrText.contains("invalid partition"))
        #expect(run.stderrText.contains("sinfo"))
    }
}
