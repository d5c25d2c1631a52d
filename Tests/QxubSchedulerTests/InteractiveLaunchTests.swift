import QxubProtocol
import QxubScheduler
import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The wrapper of an interactive job, run with bash as the keeper runs it: stdout and stderr are the terminal.
@Suite("Interactive job wrappers")
struct InteractiveLaunchTests {
    static let paths = JobPaths(stateDirectory: "/home/u/.qxub/jobs/20261125-103000-abcdef")

    /// A job directory of its own, removed by the caller.
    final class Job {
        let directory = "/tmp/qxub-interactive-test-\(getpid())-\(Int.random(in: 0..<1_000_000))"
        let paths: JobPaths
        let launch: InteractiveLaunch

        init(_ spec: JobSpec, kind: SchedulerKind = .local) throws {
            try FileSystem.createDirectories(directory + "/state")
            try FileSystem.createDirectories(directory + "/home")
            paths = JobPaths(stateDirectory: directory + "/state")
            launch = try SchedulerBackend(kind: kind).interactiveLaunch(for: spec, paths: paths)
            try FileSystem.writeAtomically(paths.script, launch.script, mode: 0o700)
        }

        deinit { _ = try? runCollectingOutput(["rm", "-rf", directory]) }

        var environment: [String] {
            ["HOME=" + directory + "/home", "PATH=/usr/bin:/bin", "QXUB_JOB_ID=t1", "SHELL=" + directory + "/shell"]
        }

        func run() throws -> CollectedRun {
            try runCollectingOutput(launch.command, environment: environment, timeout: 30)
        }

        func record(_ path: String) -> [String] {
            (FileSystem.readText(path) ?? "").trimmingWhitespace().split(separator: " ").map(String.init)
        }
    }

    static func spec(_ command: JobSpec.Command, workingDirectory: String = "/tmp") -> JobSpec {
        JobSpec(name: "ix", command: command, workingDirectory: workingDirectory, submitHost: "laptop")
    }

    @Test("the command's output stays on the terminal; records and the audit block are written as for batch")
    func recordsAndTerminal() throws {
        let job = try Job(Self.spec(.shell("echo hello; echo oops >&2; pwd; exit 3")))
        let run = try job.run()
        #expect(run.exit == .exited(3))
        #expect(run.stdoutText == "hello\n/tmp\n")
        #expect(run.stderrText == "oops\n", "nothing of the wrapper's own reaches the terminal")
        #expect(!FileSystem.exists(job.paths.stdout) && !FileSystem.exists(job.paths.stderr))
        let exit = job.record(job.paths.exitRecord)
        #expect(exit.count == 2 && exit.first == "3", "\(exit)")
        let started = job.record(job.paths.startedRecord)
        #expect(started.count == 2 && UInt64(started[0]) != nil, "\(started)")
        let log = try #require(FileSystem.readText(job.paths.joblog))
        #expect(log.contains("job t1 (local, interactive) on "))
        #expect(log.contains("submitted from: laptop\n"))
        #expect(log.contains("command:        echo hello; echo oops >&2; pwd; exit 3\n"))
        #expect(log.contains("terminal:       recorded in \(job.paths.stdout)\n"))
        #expect(log.hasSuffix(", exit status 3\n"), "\(log)")
    }

    @Test("no command: the user's shell runs interactive (-i), and its exit status is recorded")
    func userShell() throws {
        let job = try Job(Self.spec(.argv([])))
        try FileSystem.writeAtomically(
            job.directory + "/shell",
            "#!/bin/bash\necho \"shell $* in $PWD\"\nexit 4\n",
            mode: 0o700
        )
        let run = try job.run()
        #expect(run.exit == .exited(4))
        #expect(run.stdoutText == "shell -i in /tmp\n")
        #expect(job.record(job.paths.exitRecord).first == "4")
        #expect(FileSystem.readText(job.paths.joblog)?.contains("command:        (an interactive shell)\n") == true)
    }

    @Test("an argv command runs argv-exact, as a program (exit is not the wrapper's builtin)")
    func argvCommand() throws {
        let job = try Job(Self.spec(.argv(["printf", "%s|", "a b", "$HOME"])))
        let run = try job.run()
        #expect(run.exit == .exited(0))
        #expect(run.stdoutText == "a b|$HOME|")
        #expect(job.record(job.paths.exitRecord).first == "0")
    }

    /// A terminal's Ctrl-C is SIGINT to its whole foreground process group: the wrapper and the command alike.
    @Test("Ctrl-C ends the command, not the wrapper: the exit record says 130")
    func interrupt() throws {
        let job = try Job(Self.spec(.shell("echo >\"$QXUB_JOB_DIR/ready\"; sleep 30; echo not reached")))
        let child = try ChildProcess.spawn(
            job.launch.command,
            environment: job.environment,
            stdin: .null,
            stdout: .null,
            stderr: .null,
            newProcessGroup: true
        )
        let deadline = MonotonicClock.now() + 20
        while !FileSystem.exists(job.paths.stateDirectory + "/ready") && MonotonicClock.now() < deadline {
            usleep(10_000)
        }
        #expect(FileSystem.exists(job.paths.stateDirectory + "/ready"), "the command never started")
        kill(-child.pid, SIGINT)
        #expect(child.wait() == .exited(130))
        #expect(job.record(job.paths.exitRecord).first == "130")
        #expect(FileSystem.readText(job.paths.joblog)?.hasSuffix(", exit status 130\n") == true)
    }

    @Test("a working directory that cannot be entered: the message on the terminal and in the job log, exit 78")
    func missingWorkingDirectory() throws {
        let job = try Job(Self.spec(.shell("echo never"), workingDirectory: "/nonexistent/qxub"))
        let run = try job.run()
        #expect(run.exit == .exited(78))
        #expect(run.stdoutText.isEmpty)
        let message = "qxub: cannot enter the working directory /nonexistent/qxub on"
        #expect(run.stderrText.contains(message), "\(run.stderrText)")
        #expect(FileSystem.readText(job.paths.joblog)?.contains(message) == true)
        #expect(job.record(job.paths.exitRecord).prefix(1) == ["78"])
        #expect(job.record(job.paths.exitRecord).last == "setup")
    }

    @Test("a job log that cannot be written: said on the terminal (its path taken literally), exit record 78")
    func unwritableJobLog() throws {
        let directory = "/tmp/qxub-interactive-test-\(getpid())-\(Int.random(in: 0..<1_000_000))"
        try FileSystem.createDirectories(directory + "/state")
        defer { _ = try? runCollectingOutput(["rm", "-rf", directory]) }
        // A regular file where the job log's directory should be: neither mkdir nor the open can succeed.
        try FileSystem.writeAtomically(directory + "/file", "", mode: 0o600)
        let joblog = directory + "/file/$(touch PWNED) `touch PWNED`/log"
        let paths = JobPaths(stateDirectory: directory + "/state", joblog: joblog)
        let launch = try SchedulerBackend(kind: .local).interactiveLaunch(
            for: Self.spec(.shell("echo never")),
            paths: paths
        )
        try FileSystem.writeAtomically(paths.script, launch.script, mode: 0o700)
        let run = try runCollectingOutput(
            launch.command,
            environment: ["HOME=" + directory, "PATH=/usr/bin:/bin"],
            timeout: 30
        )
        #expect(run.exit == .exited(78))
        #expect(run.stdoutText.isEmpty)
        #expect(
            run.stderrText.hasSuffix("qxub: cannot write the job log \(joblog) on \(hostName())\n"),
            "\(run.stderrText)"
        )
        #expect((FileSystem.readText(paths.exitRecord) ?? "").hasPrefix("78 "))
        #expect(FileSystem.readText(paths.exitRecord)?.hasSuffix(" setup\n") == true)
        #expect(!FileSystem.exists("PWNED") && !FileSystem.exists(directory + "/state/PWNED"))
    }

    func hostName() -> String {
        ((try? runCollectingOutput(["hostname"]))?.stdoutText ?? "").trimmingWhitespace()
    }

    @Test("--pre and --post run on the terminal; a failing --pre stops the command")
    func prePost() throws {
        var spec = Self.spec(.shell("echo main"))
        spec.pre = "echo pre"
        spec.post = "echo post >&2"
        let ok = try Job(spec)
        let run = try ok.run()
        #expect(run.exit == .exited(0))
        #expect(run.stdoutText == "pre\nmain\n")
        #expect(run.stderrText == "post\n")
        spec.pre = "echo failing; exit 5"
        let failing = try Job(spec)
        let failed = try failing.run()
        #expect(failed.exit == .exited(5))
        #expect(failed.stdoutText == "failing\n")
        #expect(failed.stderrText == "qxub: --pre failed with exit status 5; the command was not run\n")
        #expect(failing.record(failing.paths.exitRecord).last == "pre")
    }

    static let richSpec = JobSpec(
        name: "train",
        command: .argv(["ipython"]),
        workingDirectory: "/scratch/a56/u/run",
        context: .init(condaEnvironment: "pytorch"),
        resources: .init(
            memoryBytes: 16 << 30,
            cpus: 4,
            walltimeSeconds: 2 * 3600 + 30 * 60,
            gpus: 1,
            storage: "gdata/a56+scratch/a56"
        ),
        queue: "gpu volta",
        project: "a56",
        submitHost: "laptop"
    )

    @Test("PBS Pro: qsub -I with the batch options on its command line (no -o/-j/-S), then -- bash wrapper")
    func pbsCommand() throws {
        let launch = try SchedulerBackend(kind: .pbspro).interactiveLaunch(for: Self.richSpec, paths: Self.paths)
        #expect(
            launch.command == [
                "qsub", "-I", "-N", "train", "-q", "gpu volta", "-P", "a56", "-l", "walltime=2:30:00", "-l", "mem=16GB",
                "-l", "ncpus=4", "-l", "ngpus=1", "-l", "storage=gdata/a56+scratch/a56", "--", "/bin/bash",
                Self.paths.script,
            ]
        )
        #expect(!launch.script.contains("#PBS"))
        #expect(launch.script.contains("QXUB_JOB_ID=${PBS_JOBID:-}\n"))
        #expect(launch.script.contains("conda activate pytorch ||"))
        #expect(launch.warnings.isEmpty)
    }

    @Test("Slurm: srun --pty with the batch options (no --output: it would take the terminal), then bash wrapper")
    func slurmCommand() throws {
        let launch = try SchedulerBackend(kind: .slurm).interactiveLaunch(for: Self.richSpec, paths: Self.paths)
        #expect(
            launch.command == [
                "srun", "--pty", "--job-name=train", "--partition=gpu volta", "--account=a56", "--time=2:30:00",
                "--mem=16384M", "--cpus-per-task=4", "--gpus=1", "/bin/bash", Self.paths.script,
            ]
        )
        #expect(launch.script.contains("QXUB_JOB_ID=${SLURM_JOB_ID:-}\n"))
        #expect(
            launch.warnings == ["--storage is a PBS Pro (NCI) request; Slurm has no equivalent, so it was left out"]
        )
    }

    @Test("local: bash runs the wrapper; what the local backend cannot honour is a warning")
    func localCommand() throws {
        let launch = try SchedulerBackend(kind: .local).interactiveLaunch(for: Self.richSpec, paths: Self.paths)
        #expect(launch.command == ["/bin/bash", Self.paths.script])
        #expect(launch.warnings.count == 2)
    }

    /// Golden files beside the batch scripts' (first line: the terminal command), for review of a deliberate
    /// change: QXUB_UPDATE_GOLDEN=1 swift test --filter InteractiveLaunchTests, then read the diff.
    @Test("wrappers match their golden files", arguments: [SchedulerKind.pbspro, .slurm, .local])
    func golden(kind: SchedulerKind) throws {
        var spec = Self.richSpec
        spec.pre = "echo pre"
        spec.post = "echo post"
        spec.variables = [KeyValue("SEED", "42")]
        spec.clientVersion = "0.1.0"
        let launch = try SchedulerBackend(kind: kind).interactiveLaunch(for: spec, paths: Self.paths)
        let text = "# run: " + launch.command.map(shellQuote).joined(separator: " ") + "\n" + launch.script
        let path = Fixtures.repositoryRoot + "/Tests/QxubSchedulerTests/Golden/interactive-\(kind)-rich.sh"
        if Environment.get("QXUB_UPDATE_GOLDEN") == "1" {
            try FileSystem.writeAtomically(path, text, mode: 0o644)
        }
        let expected = try #require(FileSystem.readText(path), "missing golden file \(path)")
        #expect(text == expected)
    }

    @Test("wrappers are valid bash", arguments: [SchedulerKind.pbspro, .slurm, .local])
    func syntax(kind: SchedulerKind) throws {
        for spec in [Self.richSpec, Self.spec(.argv([]))] {
            let launch = try SchedulerBackend(kind: kind).interactiveLaunch(for: spec, paths: Self.paths)
            let run = try runCollectingOutput(["bash", "-n"], stdinBytes: Array(launch.script.utf8))
            #expect(run.exit == .exited(0), "\(run.stderrText)")
        }
    }

    @Test("an interactive job has no array; batch still refuses an empty command")
    func refusals() throws {
        var spec = Self.spec(.shell("echo"))
        spec.array = "1-3"
        #expect(
            throws: SchedulerError(
                .malformedRequest,
                "an interactive job cannot be a job array",
                hint: "drop the array range, or use qxub batch"
            )
        ) {
            try SchedulerBackend(kind: .pbspro).interactiveLaunch(for: spec, paths: Self.paths)
        }
        #expect(throws: SchedulerError(.malformedRequest, "no command to run", hint: "put the command after --")) {
            try SchedulerBackend(kind: .pbspro).submission(for: Self.spec(.argv([])), paths: Self.paths)
        }
    }
}
