import QxubProtocol
import QxubScheduler
import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The scheduler side of an interactive job on the real schedulers, without qxub around it: the wrapper that
/// `SchedulerBackend.interactiveLaunch` renders, run by its command (`srun --pty`, `qsub -I`) on a pseudo-
/// terminal. Each job is held first so that the scheduler's waiting messages show and are read live.
enum InteractiveScenario {
    static func spec(_ command: JobSpec.Command) -> JobSpec {
        JobSpec(name: "qxub-ix", command: command, workingDirectory: "/tmp", submitHost: "test")
    }

    /// `srun --pty --hold …` / `qsub -I -h …`: the launch command with a user hold.
    static func held(_ command: [String], kind: SchedulerKind) -> [String] {
        [command[0], command[1], kind == .slurm ? "--hold" : "-h"] + command.dropFirst(2)
    }

    /// The first word of the exit record ("3" of "3 1764876543").
    static func exitStatus(_ paths: JobPaths) -> String? {
        FileSystem.readText(paths.exitRecord)?.split(separator: " ").first.map(String.init)
    }

    /// Ends a waiting launch the way ``SchedulerBackend/interactiveCancel(jobID:)`` says; whether it ended.
    static func cancel(
        _ terminal: TerminalHarness,
        jobID: String,
        kind: SchedulerKind,
        run: ([String]) throws -> CollectedRun
    ) throws -> ProcessExit? {
        let rule = SchedulerBackend(kind: kind).interactiveCancel(jobID: jobID)
        if let command = rule.command {
            let cancelled = try run(command)
            #expect(cancelled.exit == .exited(0), "\(command): \(cancelled.stderrText)")
        }
        kill(terminal.child.pid, rule.signal)
        // An exit is seen once (the child is reaped then): keep the first answer.
        if let again = rule.repeatAfterSeconds {
            if let exit = terminal.waitForExit(timeout: again) { return exit }
            kill(terminal.child.pid, rule.signal)
        }
        return terminal.waitForExit(timeout: 30)
    }
}

@Suite("Interactive jobs on the real Slurm: srun --pty runs qxub's wrapper")
struct SlurmInteractiveTests {
    func prepare(_ label: String, _ command: JobSpec.Command) throws -> (Sandbox, JobPaths, InteractiveLaunch) {
        let environment = try Components.slurm()
        let sandbox = try Sandbox("slurm-ix-" + label)
        for (key, value) in environment { sandbox.environment[key] = value }
        let paths = JobPaths(stateDirectory: sandbox.directory + "/job")
        try FileSystem.createDirectories(paths.stateDirectory)
        let launch = try SchedulerBackend(kind: .slurm).interactiveLaunch(
            for: InteractiveScenario.spec(command),
            paths: paths
        )
        try FileSystem.writeAtomically(paths.script, launch.script, mode: 0o700)
        return (sandbox, paths, launch)
    }

    @Test("a held job says it waits (id read live), runs once released, and its exit record says 3")
    func heldThenRun() throws {
        let (sandbox, paths, launch) = try prepare("exit3", .shell("echo hello; exit 3"))
        let terminal = try TerminalHarness(
            InteractiveScenario.held(launch.command, kind: .slurm),
            environment: sandbox.environmentList
        )
        #expect(terminal.waitFor("queued and waiting for resources\r\n"), "\(terminal.text)")
        let waiting = InteractiveMessages.read(terminal.text, kind: .slurm)
        let id = try #require(waiting.jobID, "\(terminal.text)")
        #expect(waiting.state == .waiting)
        #expect(!FileSystem.exists(paths.startedRecord))
        let release = try runCollectingOutput(["scontrol", "release", id], environment: sandbox.environmentList)
        #expect(release.exit == .exited(0), "\(release.stderrText)")
        #expect(terminal.waitFor("hello\r\n"), "\(terminal.text)")
        // srun exits with the command's status (qsub -I does not: see the PBS lane).
        #expect(terminal.waitForExit() == .exited(3), "\(terminal.text)")
        #expect(terminal.text.contains("srun: job \(id) has been allocated resources\r\n"))
        #expect(
            InteractiveMessages.read(terminal.text, kind: .slurm) == InteractiveMessages(state: .started, jobID: id)
        )
        #expect(InteractiveScenario.exitStatus(paths) == "3")
        #expect(FileSystem.exists(paths.startedRecord))
        #expect(FileSystem.readText(paths.joblog)?.contains("(slurm, interactive)") == true)
    }

    @Test("Ctrl-C on the terminal ends the command, not the wrapper: the exit record says 130")
    func interrupt() throws {
        let (sandbox, paths, launch) = try prepare("ctrlc", .shell("echo ready; exec sleep 60"))
        let terminal = try TerminalHarness(launch.command, environment: sandbox.environmentList)
        #expect(terminal.waitFor("ready\r\n"), "\(terminal.text)")
        try terminal.type("\u{03}")
        #expect(terminal.waitForExit() != nil, "\(terminal.text)")
        #expect(InteractiveScenario.exitStatus(paths) == "130", "\(terminal.text)")
    }

    @Test("cancel while waiting, as interactiveCancel says: srun ends and Slurm has cancelled the job")
    func cancelWaiting() throws {
        let (sandbox, paths, launch) = try prepare("cancel", .shell("echo never"))
        let terminal = try TerminalHarness(
            InteractiveScenario.held(launch.command, kind: .slurm),
            environment: sandbox.environmentList
        )
        #expect(terminal.waitFor("queued and waiting for resources\r\n"), "\(terminal.text)")
        let id = try #require(InteractiveMessages.read(terminal.text, kind: .slurm).jobID)
        let exit = try InteractiveScenario.cancel(terminal, jobID: id, kind: .slurm) { command in
            try runCollectingOutput(command, environment: sandbox.environmentList)
        }
        #expect(exit == .exited(1), "\(terminal.text)")
        #expect(InteractiveMessages.read(terminal.text, kind: .slurm).state == .abandoned, "\(terminal.text)")
        let state = try runCollectingOutput(
            ["squeue", "-h", "-t", "all", "-o", "%T", "-j", id],
            environment: sandbox.environmentList
        )
        #expect(state.stdoutText == "CANCELLED\n")
        #expect(!FileSystem.exists(paths.startedRecord))
    }
}

@Suite(
    "Interactive jobs on the real OpenPBS: qsub -I -- bash runs qxub's wrapper",
    .serialized,
    .enabled(if: RealPBS.available)
)
struct PBSInteractiveTests {
    func prepare(
        _ label: String,
        _ command: JobSpec.Command
    ) throws -> (PBSUserSandbox, JobPaths, InteractiveLaunch) {
        let sandbox = try PBSUserSandbox("ix-" + label)
        let paths = JobPaths(stateDirectory: sandbox.directory + "/job")
        try FileSystem.createDirectories(paths.stateDirectory)
        let launch = try SchedulerBackend(kind: .pbspro).interactiveLaunch(
            for: InteractiveScenario.spec(command),
            paths: paths
        )
        try FileSystem.writeAtomically(paths.script, launch.script, mode: 0o700)
        let chown = try runCollectingOutput(["chown", "-R", sandbox.user + ":" + sandbox.user, paths.stateDirectory])
        #expect(chown.exit == .exited(0), "\(chown.stderrText)")
        return (sandbox, paths, launch)
    }

    /// The PBS user's qsub on a terminal of its own, in the server's namespace.
    func terminal(_ sandbox: PBSUserSandbox, _ command: [String]) throws -> TerminalHarness {
        try TerminalHarness(sandbox.asUser(command), environment: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"])
    }

    @Test("a held job says it waits (id read live), runs once released; qsub exits 0, the exit record says 3")
    func heldThenRun() throws {
        let (sandbox, paths, launch) = try prepare("exit3", .shell("echo hello; exit 3"))
        let terminal = try terminal(sandbox, InteractiveScenario.held(launch.command, kind: .pbspro))
        #expect(terminal.waitFor(" to start\r\n"), "\(terminal.text)")
        let waiting = InteractiveMessages.read(terminal.text, kind: .pbspro)
        let id = try #require(waiting.jobID, "\(terminal.text)")
        #expect(waiting.state == .waiting)
        #expect(!FileSystem.exists(paths.startedRecord))
        let release = try sandbox.shell("qrls \(id)")
        #expect(release.exit == .exited(0), "\(release.stderrText)")
        #expect(terminal.waitFor("hello\r\n"), "\(terminal.text)")
        #expect(terminal.waitForExit() == .exited(0), "\(terminal.text)")
        #expect(terminal.text.hasPrefix("qsub: waiting for job \(id) to start\r\nqsub: job \(id) ready\r\n\r\n"))
        #expect(terminal.text.hasSuffix("\r\nqsub: job \(id) completed\r\n"), "\(terminal.text)")
        #expect(InteractiveScenario.exitStatus(paths) == "3")
        #expect(FileSystem.exists(paths.startedRecord))
        #expect(FileSystem.readText(paths.joblog)?.contains("job \(id) (pbspro, interactive)") == true)
    }

    @Test("Ctrl-C on the terminal reaches the job's command through qsub: the exit record says 130, qsub exits 0")
    func interrupt() throws {
        let (sandbox, paths, launch) = try prepare("ctrlc", .shell("echo ready; exec sleep 60"))
        let terminal = try terminal(sandbox, launch.command)
        #expect(terminal.waitFor("\nready\r\n"), "\(terminal.text)")
        try terminal.type("\u{03}")
        #expect(terminal.waitForExit() == .exited(0), "\(terminal.text)")
        #expect(InteractiveScenario.exitStatus(paths) == "130", "\(terminal.text)")
    }

    @Test("cancel while waiting, as interactiveCancel says (qdel, then SIGHUP): qsub ends, PBS lets the job go")
    func cancelWaiting() throws {
        let (sandbox, paths, launch) = try prepare("cancel", .shell("echo never"))
        let terminal = try terminal(sandbox, InteractiveScenario.held(launch.command, kind: .pbspro))
        #expect(terminal.waitFor(" to start\r\n"), "\(terminal.text)")
        let id = try #require(InteractiveMessages.read(terminal.text, kind: .pbspro).jobID)
        let exit = try InteractiveScenario.cancel(terminal, jobID: id, kind: .pbspro) { command in
            try sandbox.shell(command.map(shellQuote).joined(separator: " "))
        }
        #expect(exit == .signaled(SIGHUP), "\(terminal.text)")
        let gone = sandbox.wait(timeout: 30) {
            let stat = try? sandbox.shell("qstat -f \(id)")
            return stat?.exit != .exited(0) || stat?.stdoutText.contains("job_state = F") == true
        }
        #expect(gone, "job \(id) still in PBS after the cancel")
        #expect(!FileSystem.exists(paths.startedRecord))
    }
}
