import QxubAgent
import QxubScheduler
import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The built static agent as `qxub-agent keeper`: a real shell on its pseudo-terminal, driven through the
/// keeper's socket as an agent drives it; and the grace time that ends a session nobody attached to.
@Suite("qxub-agent keeper (the built agent)")
struct KeeperProcessTests {
    let directory: String
    let paths: JobPaths
    let loop = EventLoop()

    init() throws {
        ignoreBrokenPipes()  // a peer that is gone must fail the test, not kill the runner
        var template = Array("/tmp/qxub-keeper-it-XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw SystemError("mkdtemp", "/tmp")
        }
        directory = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        paths = JobPaths(stateDirectory: directory)
    }

    /// Starts the keeper as the agent does: a session of its own, /dev/null for its standard descriptors.
    func startKeeper(
        grace: Double,
        command: [String],
        scheduler: SchedulerKind = .local,
        environment: [String]? = nil
    ) throws -> ChildProcess {
        var options = KeeperOptions(
            directory: directory,
            windowSize: WindowSize(rows: 24, columns: 80),
            grace: grace,
            term: "dumb",
            command: command
        )
        options.scheduler = scheduler
        return try ChildProcess.spawn(
            [BuiltProducts.agent] + options.arguments,
            environment: environment,
            stdin: .null,
            stdout: .null,
            stderr: .null,
            newSession: true
        )
    }

    /// Turns the loop until `condition` holds, at most `bound` seconds; returns whether it holds.
    func turn(bound: Double = 20, until condition: () -> Bool) throws -> Bool {
        let deadline = MonotonicClock.now() + bound
        while !condition() && MonotonicClock.now() < deadline { try loop.runOnce(waitingUpTo: 0.05) }
        return condition()
    }

    /// Waits for the keeper to exit, at most `bound` seconds (then kills it).
    func exit(of keeper: ChildProcess, bound: Double = 20) -> ProcessExit? {
        let deadline = MonotonicClock.now() + bound
        while MonotonicClock.now() < deadline {
            if let exit = keeper.poll() { return exit }
            usleep(20_000)
        }
        keeper.signal(SIGKILL)
        _ = keeper.wait()
        return nil
    }

    var output: String { FileSystem.readText(paths.stdout) ?? "" }
    var log: String { FileSystem.readText(paths.keeperLog) ?? "(no keeper.log)" }

    @Test(
        "a shell on the keeper's terminal: typed input runs, output lands in out, a resize is seen, exit 3 is recorded"
    )
    func interactiveShell() throws {
        let keeper = try startKeeper(grace: 60, command: ["/bin/bash", "--norc", "--noprofile", "-i"])
        #expect(try turn { FileSystem.exists(paths.keeperSocket) }, "no socket; keeper.log: \(log)")
        let connection = try KeeperConnection.connect(to: paths.keeperSocket, on: loop).get()
        var announced = 0
        connection.onOutput = { announced += 1 }
        var closed = false
        connection.onClose = { closed = true }

        connection.sendInput(Array("echo hel\"\"lo; stty size\r".utf8))
        #expect(try turn { output.contains("hello") && output.contains("24 80") }, "out: \(output)")
        #expect(announced > 0)

        connection.resize(rows: 30, cols: 100)
        connection.sendInput(Array("stty size\r".utf8))
        #expect(try turn { output.contains("30 100") }, "out: \(output)")

        connection.sendInput(Array("exit 3\r".utf8))
        #expect(exit(of: keeper) == .exited(0), "keeper.log: \(log)")
        #expect(FileSystem.readText(paths.exitRecord)?.hasPrefix("3 ") == true)
        #expect(!FileSystem.exists(paths.keeperSocket))
        #expect(!FileSystem.exists(paths.keeperEndedRecord))
        #expect(try turn { closed })
        _ = try? runCollectingOutput(["rm", "-rf", directory], timeout: 30)
    }

    @Test("nobody attaches within the grace time: the keeper ends the command and says why")
    func graceEndsTheSession() throws {
        let keeper = try startKeeper(grace: 1, command: ["sleep", "1000"])
        #expect(exit(of: keeper) == .exited(0), "keeper.log: \(log)")
        #expect(
            FileSystem.readText(paths.keeperEndedRecord)
                == "no qxub was attached for 1 s; the interactive session was ended\n"
        )
        #expect(FileSystem.readText(paths.exitRecord)?.hasPrefix("129 ") == true)
        #expect(!FileSystem.exists(paths.keeperSocket))
        _ = try? runCollectingOutput(["rm", "-rf", directory], timeout: 30)
    }

    @Test("SIGTERM to the keeper ends the command (no keeper-ended record) and the keeper")
    func terminationSignal() throws {
        let keeper = try startKeeper(grace: 60, command: ["/bin/bash", "--norc", "--noprofile", "-i"])
        // The prompt: the shell has set up its signal handling (a SIGTERM before then would kill it: 143).
        #expect(try turn { !output.isEmpty }, "no prompt; keeper.log: \(log)")
        kill(-keeper.pid, SIGTERM)
        #expect(exit(of: keeper) == .exited(0), "keeper.log: \(log)")
        #expect(
            FileSystem.readText(paths.exitRecord)?.hasPrefix("129 ") == true,
            "exit: \(FileSystem.readText(paths.exitRecord) ?? "none"); keeper.log: \(log)"
        )
        #expect(!FileSystem.exists(paths.keeperEndedRecord))
        _ = try? runCollectingOutput(["rm", "-rf", directory], timeout: 30)
    }

    @Test("SIGTERM to a keeper whose PBS job still waits in the queue: qdel of the id qsub printed, then qsub ends")
    func cancelWhileWaiting() throws {
        let emulator = FileSystem.directoryName(#filePath) + "/../Support/pbs-emulator"
        let state = directory + "/pbsemu"
        let environment =
            Environment.all().filter { !$0.hasPrefix("PATH=") && !$0.hasPrefix("PBS_EMU_HOME=") } + [
                "PATH=\(emulator)/bin:" + (Environment.get("PATH") ?? "/usr/bin:/bin"), "PBS_EMU_HOME=" + state,
            ]
        // Held: it waits until someone releases it, which nobody does.
        let keeper = try startKeeper(
            grace: 60,
            command: ["qsub", "-I", "-h", "--", "/bin/sleep", "100"],
            scheduler: .pbspro,
            environment: environment
        )
        #expect(try turn { output.contains("qsub: waiting for job ") }, "out: \(output); keeper.log: \(log)")
        let jobID = try #require(
            InteractiveMessages.read(output, kind: .pbspro).jobID,
            "no job id in: \(output)"
        )
        kill(-keeper.pid, SIGTERM)
        #expect(exit(of: keeper, bound: 30) == .exited(0), "keeper.log: \(log)")
        #expect(log.contains("qdel \(jobID)"), "keeper.log: \(log)")
        let status = try runCollectingOutput(["qstat", "-x", "-f", jobID], environment: environment, timeout: 30)
        #expect(status.stdoutText.contains("job_state = F"), "the job is still queued: \(status.stdoutText)")
        _ = try? runCollectingOutput(
            ["python3", emulator + "/pbsemu.py", "reset"],
            environment: environment,
            timeout: 30
        )
        _ = try? runCollectingOutput(["rm", "-rf", directory], timeout: 30)
    }
}
