import QxubProtocol
import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Warm start through the built binaries and the real sshd: with a session holder running, `qxub exec`,
/// `status` and `cancel` are run by a fork of the holder (already loaded, its argument parser warm) on the
/// asking qxub's own descriptors. Part of the serialized remote suite.
extension RemoteTests {
    /// Lines of the holder's log that say a fork ran a command.
    func warmStarts(_ laptop: Laptop) -> Int {
        (FileSystem.readText(laptop.holderLog) ?? "").split(separator: "\n").filter {
            $0.contains("warm start: pid")
        }.count
    }

    /// A laptop whose holder runs and serves its warm socket.
    func warmLaptop(_ label: String) throws -> Laptop {
        let laptop = try holderLaptop(label)
        let first = try laptop.qxub(holderExec("true"))
        try #require(first.exit == .exited(0), "\(first.stderrText)")
        _ = try laptop.waitForHolder()
        let versions = ProtocolConstants.versions
        let warm = laptop.controlDirectory + "/warm-p\(versions.lowerBound)-\(versions.upperBound)-bashbox"
        try #require(laptop.sandbox.wait(timeout: 30) { FileSystem.exists(warm) }, "no warm socket at \(warm)")
        return laptop
    }

    @Test("with a holder, exec runs in a warm fork of it: its output on qxub's stdout and stderr, its exit status")
    func warmExec() throws {
        let laptop = try warmLaptop("warm")
        let before = warmStarts(laptop)
        let run = try laptop.qxub(holderExec("echo out; echo err >&2; exit 3"))
        #expect(run.exit == .exited(3), "\(run.stderrText)")
        #expect(run.stdoutText == "out\n")
        #expect(run.stderrText.contains("err\n"))
        #expect(warmStarts(laptop) == before + 1, "\(FileSystem.readText(laptop.holderLog) ?? "")")

        let terse = try laptop.qxub(["exec", "--terse", "--platform", "bashbox", "--backend", "local", "--", "true"])
        let id = terse.stdoutText.trimmingWhitespaceForTests()
        #expect(terse.exit == .exited(0) && id.hasPrefix("local-"), "\(terse.stderrText)")
        // The fork reported its status first and writes the history record after: it comes, once.
        let recorded = laptop.sandbox.wait(timeout: 20) {
            ((try? laptop.qxub(["history", "list", "--limit", "5"]))?.stdoutText ?? "").contains(id)
        }
        #expect(recorded, "the submission is in the history")
        let history = try laptop.qxub(["history", "list", "--limit", "50"])
        let lines = history.stdoutText.split(separator: "\n").filter { $0.contains(id) }
        #expect(lines.count == 1, "\(history.stdoutText)")
        let status = try laptop.qxub(["status", id, "--platform", "bashbox", "--format", "json"])
        #expect(status.exit == .exited(0), "\(status.stderrText)")
        #expect(status.stdoutText.contains(id))
        #expect(warmStarts(laptop) == before + 3)

        // QXUB_WARM_START=0: this qxub runs the command itself.
        laptop.sandbox.environment["QXUB_WARM_START"] = "0"
        let cold = try laptop.qxub(holderExec("echo cold"))
        #expect(cold.exit == .exited(0) && cold.stdoutText == "cold\n", "\(cold.stderrText)")
        #expect(warmStarts(laptop) == before + 3)
    }

    @Test("Ctrl-C at the qxub that asked reaches its warm fork: the job is cancelled, exit 130")
    func warmInterrupt() throws {
        let laptop = try warmLaptop("warmint")
        let child = try laptop.sandbox.start(holderExec("echo started; sleep 60; echo never"))
        let early = readUntil(child.stdout!, containing: "started\n", timeout: 60)
        #expect(early == "started\n")
        kill(-child.pid, SIGINT)
        let rest = collect(child, timeout: 60)
        #expect(rest.exit == .exited(130), "\(rest.stderrText)")
        #expect(rest.stderrText.contains("the job was cancelled"), "\(rest.stderrText)")
        #expect(!rest.stdoutText.contains("never"))
        #expect(warmStarts(laptop) == 1)
    }

    @Test("another build of qxub is not run warm: the holder declines, and that qxub runs the command itself")
    func warmOtherBuild() throws {
        let laptop = try warmLaptop("warmbuild")
        let copy = laptop.sandbox.directory + "/other-qxub"
        _ = try runCollectingOutput(["cp", BuiltProducts.qxub, copy])
        let run = try runCollectingOutput(
            laptop.sandbox.commandPrefix + [copy] + holderExec("echo other build"),
            environment: laptop.sandbox.environmentList,
            timeout: 120
        )
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        #expect(run.stdoutText == "other build\n")
        #expect(warmStarts(laptop) == 0)
        #expect((FileSystem.readText(laptop.holderLog) ?? "").contains("warm start declined: another build of qxub"))
    }

    @Test("a command that would open a new ssh login (which may prompt) is handed back, and run once, by its qxub")
    func warmHandBack() throws {
        let laptop = try warmLaptop("warmback")
        // A second platform on the same host, with no master yet: its login would need the terminal.
        try laptop.sandbox.configureRemote(
            [
                .init(name: "bashbox", host: "qxub-bash", workingDirectory: nil, sessionPersist: "60"),
                .init(name: "other", host: "qxub-bash", workingDirectory: nil, sessionPersist: "0"),
            ],
            ssh: laptop.ssh
        )
        _ = try sshRun(laptop, "rm -f $HOME/handback.txt")
        let run = try laptop.qxub([
            "exec", "--platform", "other", "--backend", "local", "--",
            "echo handed back >> $HOME/handback.txt; echo done",
        ])
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        #expect(run.stdoutText == "done\n")
        #expect(warmStarts(laptop) == 1, "a fork took it first")
        let file = try sshRun(laptop, "cat $HOME/handback.txt")
        #expect(file.stdoutText == "handed back\n", "the job ran once")
    }

    @Test("a stopped holder: qxub runs the command itself after 0.5 s, and when the holder resumes nothing runs twice")
    func warmStoppedHolder() throws {
        let laptop = try warmLaptop("warmstop")
        _ = try sshRun(laptop, "rm -f $HOME/once.txt")
        let holder = try #require(laptop.holderPID())
        kill(holder, SIGSTOP)
        laptop.sandbox.cleanup.append(["kill", "-CONT", "\(holder)"])
        let run = try laptop.qxub(holderExec("echo once >> $HOME/once.txt; echo ran"), timeout: 120)
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        #expect(run.stdoutText == "ran\n")
        kill(holder, SIGCONT)
        // The holder was replaced (SIGTERM while stopped): once resumed it reads the pending request, and ends.
        #expect(laptop.sandbox.wait(timeout: 30) { processEnded(holder) }, "the stopped holder ends once resumed")
        let file = try sshRun(laptop, "cat $HOME/once.txt")
        #expect(file.stdoutText == "once\n", "the job ran once")
    }

    @Test(
        "exec through a holder whose ssh master hangs recovers, warm or not: the warm fork logs in again without a prompt",
        arguments: ["1", "0"]
    )
    func warmHungMasterExec(warmStart: String) throws {
        let laptop = try holderLaptop("hungexec" + warmStart)
        laptop.sandbox.environment["QXUB_HELLO_TIMEOUT"] = "3"
        laptop.sandbox.environment["QXUB_WARM_START"] = warmStart
        _ = try laptop.qxub(holderExec("true"))
        _ = try laptop.waitForHolder()
        _ = try laptop.freezeMaster()
        let started = MonotonicClock.now()
        let run = try laptop.qxub(holderExec("echo after the master hung; exit 7"), timeout: 120)
        let elapsed = MonotonicClock.now() - started
        #expect(run.exit == .exited(7), "\(run.stderrText)")
        #expect(run.stdoutText == "after the master hung\n")
        // The holder's 30 s of silence on its agent session, then a new master (hello timeout 3 s, twice).
        #expect(elapsed < 60, "recovered after \(elapsed) s")
    }

    private func sshRun(_ laptop: Laptop, _ command: String) throws -> CollectedRun {
        try runCollectingOutput(["ssh", "-F", laptop.ssh["QXUB_TEST_SSH_CONFIG"]!, "qxub-bash", command], timeout: 60)
    }
}
