import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// qxub on a login node of a real OpenPBS (Tests/Support/openpbs.sh), as its unprivileged user, with the
/// server's job history on and off (OpenPBS's default is off). One test at a time: the history setting is
/// the server's.
@Suite("qxub exec against a real OpenPBS", .serialized, .enabled(if: RealPBS.available))
struct RealPBSTests {
    static let histories = [true, false]

    func sandbox(_ label: String, history: Bool) throws -> PBSUserSandbox {
        try RealPBS.setHistory(history)
        return try PBSUserSandbox(label + (history ? "-hist" : "-nohist"))
    }

    @Test(
        "a job longer than three scheduler polls runs to its end (history off: qstat -xf shows no live job)",
        arguments: histories
    )
    func longJob(history: Bool) throws {
        let sandbox = try sandbox("long", history: history)
        let run = try sandbox.qxub(["exec", "--backend", "pbspro", "--", "echo start; sleep 8; echo done"])
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        #expect(run.stdoutText == "start\ndone\n")
    }

    @Test(
        "exit statuses and signals come back as qxub's exit status; no PBS spool path reaches stderr",
        arguments: histories
    )
    func exitStatuses(history: Bool) throws {
        let sandbox = try sandbox("codes", history: history)
        let seven = try sandbox.qxub(["exec", "--backend", "pbspro", "--", "echo out; echo err >&2; exit 7"])
        #expect(seven.exit == .exited(7), "\(seven.stderrText)")
        #expect(seven.stdoutText == "out\n")
        #expect(seven.stderrText.contains("err\n"))
        let killed = try sandbox.qxub(["exec", "--backend", "pbspro", "--", "echo before; kill -9 $$"])
        #expect(killed.exit == .exited(137), "\(killed.stderrText)")
        #expect(killed.stdoutText == "before\n")
        #expect(killed.stderrText.contains("killed by signal 9"))
        #expect(
            !killed.stderrText.contains("mom_priv"),
            "bash's notice about the killed command names PBS's spool: \(killed.stderrText)"
        )
        #expect(!killed.stderrText.contains("Killed"), "\(killed.stderrText)")
    }

    @Test("a walltime kill exits 124 and says so", arguments: histories)
    func walltime(history: Bool) throws {
        let sandbox = try sandbox("walltime", history: history)
        let run = try sandbox.qxub([
            "exec", "--backend", "pbspro", "--time", "3s", "--", "echo start; sleep 60; echo end",
        ])
        #expect(run.exit == .exited(124), "\(run.stderrText)")
        #expect(run.stderrText.contains("walltime exceeded"))
        // PBS's SIGTERM reaches the job's processes one by one: `sleep` may die first and its shell go on to
        // print "end" before its own TERM (seen on this OpenPBS). Either way the walltime kill is the verdict.
        #expect(run.stdoutText == "start\n" || run.stdoutText == "start\nend\n", "\(run.stdoutText)")
    }

    /// The command outlives PBS's SIGTERM and ends by itself with 0 before PBS's SIGKILL: the job script's
    /// record would say success, but PBS killed the job for its walltime.
    @Test("a walltime kill of a command that survives SIGTERM is still 124, never success", arguments: histories)
    func walltimeSurvivingTerm(history: Bool) throws {
        let sandbox = try sandbox("walltime-term", history: history)
        let run = try sandbox.qxub([
            "exec", "--backend", "pbspro", "--time", "2s", "--", "trap '' TERM; echo start; sleep 7; echo end",
        ])
        #expect(run.exit == .exited(124), "\(run.stderrText)")
        #expect(run.stderrText.contains("walltime exceeded"))
        // The end the agent decided is kept with the job: the history shows it.
        let remote = try sandbox.qxub(["history", "--remote"])
        #expect(remote.exit == .exited(0), "\(remote.stderrText)")
        #expect(remote.stdoutText.contains("exit 124"), "\(remote.stdoutText)")
        #expect(!remote.stdoutText.contains("no exit yet"), "\(remote.stdoutText)")
    }

    @Test("qdel from outside qxub while the job runs exits 143", arguments: histories)
    func deletedWhileRunning(history: Bool) throws {
        let sandbox = try sandbox("qdel", history: history)
        let child = try sandbox.start(["exec", "--backend", "pbspro", "--", "echo started; sleep 120"])
        let id = try #require(sandbox.submittedJobID())
        #expect(sandbox.wait(timeout: 60) { sandbox.jobDirectories.contains { FileSystem.exists($0 + "/started") } })
        let qdel = try sandbox.shell("qdel \(id)")
        #expect(qdel.exit == .exited(0), "\(qdel.stderrText)")
        let run = collect(child, timeout: 120)
        #expect(run.exit == .exited(143), "\(run.stderrText)")
        #expect(run.stdoutText == "started\n")
    }

    @Test("Ctrl-C cancels the running job with qdel and exits 130", arguments: histories)
    func interrupt(history: Bool) throws {
        let sandbox = try sandbox("ctrlc", history: history)
        let child = try sandbox.start(["exec", "--backend", "pbspro", "--", "echo started; sleep 120"])
        let id = try #require(sandbox.submittedJobID())
        #expect(sandbox.wait(timeout: 60) { sandbox.jobDirectories.contains { FileSystem.exists($0 + "/started") } })
        kill(-child.pid, SIGINT)
        let run = collect(child, timeout: 120)
        #expect(run.exit == .exited(130), "\(run.stderrText)")
        // PBS has let the job go (finished, or forgotten without history).
        let gone = sandbox.wait(timeout: 60) {
            let stat = try? sandbox.shell("qstat -f \(id)")
            return stat?.exit != .exited(0) || stat?.stdoutText.contains("job_state = F") == true
        }
        #expect(gone, "job \(id) still in PBS after the cancel")
    }

    @Test(
        "--array 1-3 followed, subjob 2 failing: [index]-tagged output, subjob 2's exit status, attach ID[2]",
        arguments: histories
    )
    func arrayFollowed(history: Bool) throws {
        let sandbox = try sandbox("array", history: history)
        try ExecScenarios.arrayFollowed(
            exec: { try sandbox.qxub(["exec", "--backend", "pbspro"] + $0) },
            qxub: { try sandbox.qxub($0, timeout: 90) }
        )
    }

    @Test("a short id (354 for 354.server) works with status, attach and cancel", arguments: [false])
    func shortIDs(history: Bool) throws {
        let sandbox = try sandbox("shortid", history: history)
        let submit = try sandbox.qxub(["exec", "--backend", "pbspro", "--terse", "--", "echo hi; sleep 60"])
        #expect(submit.exit == .exited(0), "\(submit.stderrText)")
        let id = submit.stdoutText.trimmingWhitespaceForTests()
        let short = String(id.prefix { $0 != "." })
        #expect(short != id && !short.isEmpty, "PBS ids carry the server: \(id)")
        let running = sandbox.wait(timeout: 60) {
            (try? sandbox.qxub(["status", short]))?.stdoutText.contains("running") == true
        }
        #expect(running)
        let cancel = try sandbox.qxub(["cancel", short])
        #expect(cancel.exit == .exited(0), "\(cancel.stderrText)")
        let attach = try sandbox.qxub(["attach", short])
        #expect(attach.stdoutText == "hi\n", "\(attach.stderrText)")
        #expect(attach.exit == .exited(130), "\(attach.stderrText)")
    }
}

/// From a laptop: qxub inside the PBS namespace reaches a login node through a real sshd there, whose user
/// finds the PBS commands through its login files, as on a cluster.
extension RealPBSTests {
    func remote(_ label: String, history: Bool) throws -> Sandbox {
        try RealPBS.setHistory(history)
        let pbs = try RealPBS.environment()
        let ssh = try Components.sshd(.pbs)
        let config = ssh["QXUB_TEST_SSH_CONFIG"]!
        let sandbox = try Sandbox("pbs-remote-" + label)
        sandbox.commandPrefix = ["ip", "netns", "exec", pbs["QXUB_PBS_NETNS"]!]
        try sandbox.configureRemote([.init(name: "pbsbox", host: "qxub-bash")], ssh: ssh)
        // The login node's user: PBS commands on PATH from its login files, and a fresh qxub directory.
        let login = "export PATH=\(pbs["QXUB_PBS_PATH"]!):$PATH"
        let prepare = try runCollectingOutput(
            sandbox.commandPrefix + [
                "ssh", "-F", config, "qxub-bash",
                "pkill -u $(id -u) -f '[q]xub-agent serve'; rm -rf $HOME/.qxub; printf '%s\\n' \(shellQuote(login)) > $HOME/.bashrc; cp $HOME/.bashrc $HOME/.profile",
            ],
            timeout: 60
        )
        #expect(prepare.exit == .exited(0), "\(prepare.stderrText)")
        let install = try sandbox.qxub(["agent", "install", "--platform", "pbsbox"], timeout: 300)
        #expect(install.exit == .exited(0), "\(install.stderrText)")
        return sandbox
    }

    @Test("from a laptop through sshd: a long job runs to its end and a walltime kill is 124", arguments: histories)
    func remoteJobs(history: Bool) throws {
        let sandbox = try remote("jobs", history: history)
        let long = try sandbox.qxub(
            ["exec", "--platform", "pbsbox", "--", "echo start; sleep 8; echo done"],
            timeout: 180
        )
        #expect(long.exit == .exited(0), "\(long.stderrText)")
        #expect(long.stdoutText == "start\ndone\n")
        let killed = try sandbox.qxub(
            [
                "exec", "--platform", "pbsbox", "--time", "2s", "--", "trap '' TERM; echo start; sleep 7; echo end",
            ],
            timeout: 180
        )
        #expect(killed.exit == .exited(124), "\(killed.stderrText)")
        #expect(killed.stderrText.contains("walltime exceeded"))
    }
}
