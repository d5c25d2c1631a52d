import QxubProtocol
import QxubScheduler
import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Job scripts")
struct JobScriptTests {
    static let paths = JobPaths(stateDirectory: "/home/u/.qxub/jobs/20261125-103000-abcdef")

    static let richSpec = JobSpec(
        name: "train",
        command: .argv(["python", "train.py", "--epochs", "3"]),
        workingDirectory: "/scratch/a56/u/run",
        createWorkingDirectory: true,
        context: .init(condaEnvironment: "pytorch", modules: ["cuda/12.2", "gcc"]),
        pre: "echo pre",
        post: "echo post",
        variables: [KeyValue("SEED", "42")],
        resources: .init(
            memoryBytes: 16 << 30,
            cpus: 4,
            walltimeSeconds: 2 * 3600 + 30 * 60,
            localDiskBytes: 100 << 30,
            gpus: 1,
            storage: "gdata/a56+scratch/a56"
        ),
        queue: "gpuvolta",
        project: "a56",
        email: "u@example.org",
        emailEvents: "ae",
        submitHost: "laptop",
        clientVersion: "0.1.0"
    )

    static let containerSpec = JobSpec(
        name: "sing",
        command: .shell("cat /etc/os-release | head -1"),
        workingDirectory: "/w",
        context: .init(container: "/images/ubuntu.sif", binds: ["/g/data:/g/data"]),
        submitHost: "login1",
        clientVersion: "0.1.0"
    )

    static let plainSpec = JobSpec(
        name: "plain",
        command: .shell("echo $QXUB_JOB_ID; hostname"),
        workingDirectory: "/w",
        submitHost: "login1",
        clientVersion: "0.1.0"
    )

    static var cases: [(String, JobSpec, SchedulerKind)] {
        [
            ("pbspro-rich", richSpec, .pbspro), ("slurm-rich", richSpec, .slurm), ("local-rich", richSpec, .local),
            ("pbspro-container", containerSpec, .pbspro), ("slurm-container", containerSpec, .slurm),
            ("pbspro-plain", plainSpec, .pbspro), ("slurm-plain", plainSpec, .slurm),
            ("local-plain", plainSpec, .local),
        ]
    }

    /// Golden files in Tests/QxubSchedulerTests/Golden (first line: the submission argv). To accept a
    /// deliberate change: QXUB_UPDATE_GOLDEN=1 swift test --filter JobScriptTests, then review the diff.
    @Test("scripts match their golden files", arguments: cases)
    func golden(name: String, spec: JobSpec, kind: SchedulerKind) throws {
        let rendered = try JobScript(spec: spec, paths: Self.paths, kind: kind).render()
        let text = "# submit: " + rendered.command.map(shellQuote).joined(separator: " ") + "\n" + rendered.script
        let path = Fixtures.repositoryRoot + "/Tests/QxubSchedulerTests/Golden/" + name + ".sh"
        if Environment.get("QXUB_UPDATE_GOLDEN") == "1" {
            try FileSystem.writeAtomically(path, text, mode: 0o644)
        }
        let expected = try #require(FileSystem.readText(path), "missing golden file \(path)")
        #expect(text == expected)
    }

    @Test("scripts are valid bash", arguments: cases)
    func syntax(name: String, spec: JobSpec, kind: SchedulerKind) throws {
        let rendered = try JobScript(spec: spec, paths: Self.paths, kind: kind).render()
        let run = try runCollectingOutput(["bash", "-n"], stdinBytes: Array(rendered.script.utf8))
        #expect(run.exit == .exited(0), "\(name): \(run.stderrText)")
    }

    @Test("PBS: plain values become directives; a path with a space goes on the command line as one argument")
    func directivesVersusCommandLine() throws {
        let paths = JobPaths(stateDirectory: "/s", joblog: "/logs/my run.log")
        let rendered = try JobScript(spec: Self.plainSpec, paths: paths, kind: .pbspro).render()
        #expect(rendered.script.contains("#PBS -N plain\n"))
        #expect(!rendered.script.contains("#PBS -o"))
        #expect(rendered.command == ["qsub", "-o", "/logs/my run.log", "/s/job.sh"])
    }

    @Test("Slurm: resources in Slurm's units")
    func slurmUnits() throws {
        let script = try JobScript(spec: Self.richSpec, paths: Self.paths, kind: .slurm).render().script
        for line in [
            "#SBATCH --mem=16384M", "#SBATCH --time=2:30:00", "#SBATCH --cpus-per-task=4", "#SBATCH --gpus=1",
            "#SBATCH --tmp=102400M", "#SBATCH --mail-type=END,FAIL",
        ] {
            #expect(script.contains(line + "\n"), "missing \(line)")
        }
    }

    @Test("Slurm: a % in the job log path is written %%, so sbatch does not expand it (%j is the job id)")
    func slurmPercent() throws {
        let paths = JobPaths(stateDirectory: "/s", joblog: "/logs/100%/run-%j.log")
        let script = try JobScript(spec: Self.plainSpec, paths: paths, kind: .slurm).render().script
        #expect(script.contains("#SBATCH --output=/logs/100%%/run-%%j.log\n"))
    }

    @Test("no working directory: the job starts in $HOME, quoted (a home with a space works)")
    func homeQuoted() throws {
        var spec = Self.plainSpec
        spec.workingDirectory = ""
        let script = try JobScript(spec: spec, paths: Self.paths, kind: .local).render().script
        #expect(script.contains("cd -- \"$HOME\" ||"))
    }

    @Test(
        "values a script cannot carry are refused with the whole message and hint",
        arguments: ["queue", "variable", "raw", "reserved", "pbs-colon"]
    )
    func refusals(what: String) throws {
        var spec = Self.plainSpec
        var paths = Self.paths
        var kind = SchedulerKind.slurm
        let expected: SchedulerError
        switch what {
        case "reserved":
            spec.variables = [KeyValue("qxub_state", "/elsewhere")]
            expected = SchedulerError(
                .malformedRequest,
                "--var qxub_state=…: names starting with qxub_ or QXUB_ belong to qxub's job script",
                hint: "choose another name"
            )
        case "pbs-colon":
            paths = JobPaths(stateDirectory: "/s", joblog: "/logs/run:1.log")
            kind = .pbspro
            expected = SchedulerError(
                .malformedRequest,
                "the job log path /logs/run:1.log contains ':', which PBS reads as HOST:PATH",
                hint: "choose a --joblog path without ':'"
            )
        case "queue":
            spec.queue = "normal\n#PBS -l ncpus=999"
            expected = SchedulerError(
                .malformedRequest,
                #"the queue contains a line break or NUL byte: "normal\n#PBS -l ncpus=999""#,
                hint: "remove it"
            )
        case "variable":
            spec.variables = [KeyValue("A B", "1")]
            expected = SchedulerError(
                .malformedRequest,
                #"--var A B=…: "A B" is not a valid variable name"#,
                hint: "use letters, digits and _, not starting with a digit"
            )
        default:
            spec.resources.raw = ["ncpus=4"]
            expected = SchedulerError(
                .malformedRequest,
                "-l ncpus=4: raw -l resources are PBS Pro syntax and this cluster runs Slurm",
                hint: "use --mem, --cpus, --time, --gpus or --disk"
            )
        }
        #expect(throws: expected) {
            try JobScript(spec: spec, paths: paths, kind: kind).render()
        }
    }

    static let hostile = [
        "a b  c", "it's", "\"double\"", "$(touch PWNED)", "`touch PWNED`", "${HOME}", "a;touch PWNED", "x\ny",
        "tab\there",
        "comma,separated", "back\\slash", "ünïcødé ✓", "*", "-n", "!", "#not a comment", "'; touch PWNED; echo '",
    ]

    /// Runs a rendered local script with bash, as the local backend does, and returns what the job printed.
    func runLocally(_ spec: JobSpec) throws -> (stdout: String, stderr: String, directory: String) {
        let directory = "/tmp/qxub-script-test-\(getpid())-\(Int.random(in: 0..<1_000_000))"
        try FileSystem.createDirectories(directory + "/state")
        let paths = JobPaths(stateDirectory: directory + "/state")
        let rendered = try JobScript(spec: spec, paths: paths, kind: .local).render()
        try FileSystem.writeAtomically(paths.script, rendered.script, mode: 0o700)
        let run = try runCollectingOutput(
            ["/bin/bash", paths.script],
            environment: ["HOME=" + directory, "PATH=/usr/bin:/bin", "QXUB_JOB_ID=t1"],
            timeout: 30
        )
        #expect(run.exit == .exited(0), "stderr: \(run.stderrText) \(FileSystem.readText(paths.stderr) ?? "")")
        return (FileSystem.readText(paths.stdout) ?? "", FileSystem.readText(paths.stderr) ?? "", directory)
    }

    @Test("hostile strings arrive literally and never execute: argv, --var, pre/post, working directory")
    func hostileStrings() throws {
        for value in Self.hostile {
            let workdir = "/tmp/qxub work dir $(touch PWNED) 'q'"
            let spec = JobSpec(
                name: "hostile",
                command: .argv(["printf", "%s|%s|", value, "$SECRET"]),
                workingDirectory: workdir,
                createWorkingDirectory: true,
                post: "printf '%s' \"$SECRET\"",
                variables: [KeyValue("SECRET", value)]
            )
            let (stdout, stderr, directory) = try runLocally(spec)
            #expect(
                stdout == value + "|$SECRET|" + value,
                "value \(EscapedBytes(Array(value.utf8))): got \(EscapedBytes(Array(stdout.utf8))) \(stderr)"
            )
            #expect(
                !FileSystem.exists(directory + "/PWNED") && !FileSystem.exists(workdir + "/PWNED")
                    && !FileSystem.exists("PWNED")
            )
            _ = try runCollectingOutput(["rm", "-rf", directory, workdir])
        }
    }

    @Test("a one-string command is a shell line: pipes, variables and ; work")
    func shellLine() throws {
        let spec = JobSpec(
            name: "s",
            command: .shell("echo $QXUB_JOB_ID; echo 'a  b' | tr a A"),
            workingDirectory: "/tmp"
        )
        let (stdout, _, directory) = try runLocally(spec)
        #expect(stdout == "t1\nA  b\n")
        _ = try runCollectingOutput(["rm", "-rf", directory])
    }
}
