import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// PBS Pro cannot be installed here: these run against the emulator in Tests/Support/pbs-emulator, which
/// really runs jobs and reproduces the formats, statuses and errors recorded from OpenPBS 23.06.
@Suite("qxub exec against the PBS Pro emulator")
struct PBSBackendTests {
    func sandbox(_ label: String) throws -> Sandbox {
        let sandbox = try Sandbox(
            "pbs-" + label,
            fakeBinaries: fakeActivationTools,
            extraPath: [Components.pbsEmulatorBin]
        )
        sandbox.environment["PBS_EMU_HOME"] = sandbox.directory + "/pbs"
        sandbox.environment["PBS_EMU_JOB_HOME"] = sandbox.directory + "/home"
        // As on a real cluster (Tests/Fixtures/pbs-real, job-env-login-path.txt): a job's PATH is what the
        // user's login files set, not the submitter's PATH; the login file puts the tools on it.
        let path = sandbox.environment["PATH"] ?? "/usr/bin:/bin"
        try FileSystem.writeAtomically(
            sandbox.directory + "/home/.bash_profile",
            "export PATH='" + path.replacingAll("'", with: "'\\''") + "'\n",
            mode: 0o644
        )
        sandbox.cleanup.append([
            "python3", Components.repositoryRoot + "/Tests/Support/pbs-emulator/pbsemu.py", "reset",
        ])
        return sandbox
    }

    func scenarios(_ label: String) throws -> ExecScenarios {
        ExecScenarios(backend: "pbspro", sandbox: try sandbox(label))
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
    @Test("Ctrl-C while following an array: one `qdel ID[]` for the whole array, every subjob cancelled, 130")
    func arrayCancelled() throws {
        let sandbox = try sandbox("arraycancel")
        let arrayID = try ExecScenarios(backend: "pbspro", sandbox: sandbox).arrayCancelled(cancelCommand: "qdel")
        #expect(arrayID.contains("[]"), "\(arrayID)")
        let qstat = try runCollectingOutput(
            [Components.pbsEmulatorBin + "/qstat", "-x", "-t", arrayID],
            environment: sandbox.environmentList,
            timeout: 30
        )
        #expect(!qstat.stdoutText.contains(" R "), "no subjob runs: \(qstat.stdoutText)")
    }
    @Test("Ctrl-C cancels the running job") func cancel() throws { try scenarios("cancel").cancelWhileRunning() }
    @Test("--terse, --quiet and --dry") func modes() throws { try scenarios("modes").terseQuietDry() }

    @Test("a walltime kill (Exit_status -29) exits 124 and says so")
    func walltime() throws {
        let sandbox = try sandbox("walltime")
        let run = try sandbox.qxub(
            ["exec", "--backend", "pbspro", "--time", "3s", "--", "echo sleeping past the limit; sleep 60"],
            timeout: 120
        )
        #expect(run.exit == .exited(124), "\(run.stderrText)")
        #expect(run.stderrText.contains("walltime exceeded"))
        #expect(run.stdoutText == "sleeping past the limit\n")
    }

    @Test("Ctrl-C while queued cancels the job; PBS keeps no Exit_status, qxub still ends")
    func cancelQueued() throws {
        let sandbox = try sandbox("queued")
        try FileSystem.createDirectories(sandbox.directory + "/pbs")
        try FileSystem.writeAtomically(sandbox.directory + "/pbs/scheduling_off", "")
        let child = try sandbox.start(["exec", "--backend", "pbspro", "--", "echo should never run"])
        let id = try #require(sandbox.submittedJobID())
        // Ctrl-C once qxub knows the job (it records it in the history as soon as the agent names it).
        #expect(sandbox.wait(timeout: 30) { sandbox.historyLists(id) }, "qxub never recorded \(id)")
        kill(-child.pid, SIGINT)  // the whole group, as a terminal does
        let run = collect(child, timeout: 60)
        #expect(run.exit == .exited(130), "\(run.stderrText)")
        #expect(run.stderrText.contains("cancelled before it started"))
    }

    @Test("a job deleted while queued by someone else ends the wait (Python qxub hangs forever)")
    func deletedWhileQueued() throws {
        let sandbox = try sandbox("deletedqueued")
        try FileSystem.createDirectories(sandbox.directory + "/pbs")
        try FileSystem.writeAtomically(sandbox.directory + "/pbs/scheduling_off", "")
        let child = try sandbox.start(["exec", "--backend", "pbspro", "--", "echo never"])
        let id = try #require(sandbox.submittedJobID())
        let qdel = try runCollectingOutput(["qdel", id], environment: sandbox.environmentList)
        #expect(qdel.exit == .exited(0), "\(qdel.stderrText)")
        let run = collect(child, timeout: 60)
        #expect(run.exit == .exited(143), "\(run.stderrText)")
        #expect(run.stderrText.contains("deleted before it started"))
    }

    @Test(
        "a rejected submission exits 125 with PBS's message and a hint",
        arguments: [
            (["-q", "nosuch"], "Unknown queue", "qstat -Q"),
            (["-l", "nosuch=1"], "Unknown resource", "-l"),
        ]
    )
    func rejected(options: [String], message: String, hint: String) throws {
        let sandbox = try sandbox("rejected")
        let run = try sandbox.qxub(["exec", "--backend", "pbspro"] + options + ["--", "echo never"])
        #expect(run.exit == .exited(125), "\(run.stderrText)")
        #expect(run.stderrText.contains(message))
        #expect(run.stderrText.contains(hint))
    }
}
