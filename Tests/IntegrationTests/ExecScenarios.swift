import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The exec behaviours every backend must show, run against one backend.
struct ExecScenarios {
    let backend: String
    let sandbox: Sandbox

    func exec(_ arguments: [String], timeout: Double = 120) throws -> CollectedRun {
        try sandbox.qxub(["exec", "--backend", backend] + arguments, timeout: timeout)
    }

    func exitCodes() throws {
        let zero = try exec(["--", "echo hello"])
        #expect(zero.exit == .exited(0), "\(zero.stderrText)")
        #expect(zero.stdoutText == "hello\n")
        let seven = try exec(["--", "bash", "-c", "echo out; echo err >&2; exit 7"])
        #expect(seven.exit == .exited(7), "\(seven.stderrText)")
        #expect(seven.stdoutText == "out\n", "stdout holds only job stdout")
        #expect(seven.stderrText.contains("err\n"))
        #expect(!seven.stderrText.contains("out"))
    }

    func signal() throws {
        let run = try exec(["--", "echo before; kill -9 $$"])
        #expect(run.exit == .exited(137), "\(run.stderrText)")
        #expect(run.stdoutText == "before\n")
        #expect(run.stderrText.contains("killed by signal 9"))
    }

    func argvIsExact() throws {
        let run = try exec(["--", "python3", "-c", "import sys; print(sys.argv[1:])", "a  b", "$HOME", "*", "it's"])
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        #expect(run.stdoutText == "['a  b', '$HOME', '*', \"it's\"]\n")
    }

    func byteExactOutput() throws {
        // Partial lines, carriage returns, no final newline, binary bytes, then 10 MB.
        let run = try exec(
            [
                "--",
                "printf 'a\\rb\\rc'; sleep 0.3; printf 'partial'; sleep 0.3; printf '\\000\\377\\n'; head -c 10485760 /dev/zero | tr '\\0' 'x'",
            ],
            timeout: 300
        )
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        let expected =
            Array("a\rb\rcpartial".utf8) + [0, 255, 10] + Array(repeating: UInt8(ascii: "x"), count: 10_485_760)
        #expect(run.stdout.count == expected.count)
        #expect(run.stdout == expected)
    }

    func randomBytes() throws {
        let file = sandbox.directory + "/random.bin"
        let run = try exec(["--", "head -c 3000000 /dev/urandom > \(file); cat \(file)"], timeout: 300)
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        #expect(run.stdout == FileSystem.read(file))
    }

    func prePost() throws {
        let run = try exec(["--pre", "echo pre", "--post", "echo post", "--", "echo main"])
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        #expect(run.stdoutText == "pre\nmain\npost\n", "nothing truncates earlier output")
        let failing = try exec(["--post", "echo post", "--", "echo main; exit 4"])
        #expect(failing.exit == .exited(4))
        #expect(failing.stdoutText == "main\n", "post runs only when main succeeded")
        let badPre = try exec(["--pre", "exit 9", "--", "echo main"])
        #expect(badPre.exit == .exited(9))
        #expect(badPre.stdoutText == "")
        #expect(badPre.stderrText.contains("--pre failed with exit status 9"))
    }

    func hostileValues() throws {
        // The job runs in a directory of its own, where a PWNED file would appear if anything executed.
        let workdir = sandbox.directory + "/hostile work $(touch PWNED)"
        let value = "a 'b' \"c\" $(touch PWNED) `touch PWNED` ;, ünï\nline2"
        let run = try exec([
            "--execdir", workdir, "--create-execdir", "--var", "V=" + value, "--", "printf '%s' \"$V\"; ls",
        ])
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        #expect(run.stdoutText == value, "the value arrives literally, and the job's directory stays empty")
        #expect(
            !FileSystem.exists(workdir + "/PWNED") && !FileSystem.exists(sandbox.directory + "/PWNED")
                && !FileSystem.exists(sandbox.directory + "/home/PWNED")
        )
        let name = try exec(["--execdir", workdir, "-N", "my job/1:x $(touch PWNED)", "--", "echo $QXUB_JOB_ID; ls"])
        #expect(name.exit == .exited(0), "\(name.stderrText)")
        let lines = name.stdoutText.split(separator: "\n")
        #expect(
            lines.count == 1 && !lines[0].isEmpty,
            "the job's id, and nothing created in its directory: \(name.stdoutText)"
        )
    }

    func missingOutputDirectory() throws {
        let out = sandbox.directory + "/not/yet/there/out.txt"
        let run = try exec(["--out", out, "--", "echo into a new directory"])
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        #expect(run.stdoutText == "into a new directory\n")
        #expect(FileSystem.readText(out) == "into a new directory\n")
    }

    func condaFailure() throws {
        let missing = try exec(["--env", "nosuchenv", "--", "echo never"])
        #expect(missing.exit == .exited(78), "\(missing.stderrText)")
        #expect(missing.stderrText.contains("conda activate nosuchenv failed"))
        #expect(missing.stdoutText == "")
    }

    func modules() throws {
        let good = try exec(["--mod", "good", "--mods", "fine,ok", "--", "echo loaded"])
        #expect(good.exit == .exited(0), "\(good.stderrText)")
        #expect(good.stdoutText == "loaded\n")
        let bad = try exec(["--mod", "bad", "--", "echo never"])
        #expect(bad.exit == .exited(78))
        #expect(bad.stderrText.contains("module load bad failed"))
    }

    func arrayTerse() throws {
        let run = try exec(["--terse", "--array", "1-3", "--", "echo task $QXUB_JOB_ID"])
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        let directory = try #require(sandbox.jobDirectories.first)
        let done = sandbox.wait(timeout: 60) { (1...3).allSatisfy { FileSystem.exists(directory + "/exit.\($0)") } }
        #expect(done, "every subjob writes its own exit record")
        for index in 1...3 {
            #expect(FileSystem.readText(directory + "/out.\(index)")?.hasPrefix("task ") == true)
        }
        let follow = try exec(["--array", "1-3x", "--", "true"])
        #expect(follow.exit == .exited(64))
        #expect(follow.stderrText.contains("--terse"))
    }

    /// `--array` followed: each subjob's lines once, tagged with its index; a line of counts per state on
    /// stderr (plain lines: stderr is no terminal); the exit status of the subjob that failed; and
    /// `qxub attach ID[2]` follows that one subjob.
    func arrayFollowed() throws {
        try Self.arrayFollowed(exec: { try exec($0) }, qxub: { try sandbox.qxub($0, timeout: 60) })
    }

    /// ``arrayFollowed()`` with the commands given: `exec` runs `qxub exec --backend … ARGS`, `qxub` any other
    /// (so that the real-OpenPBS lane runs it as its user).
    static func arrayFollowed(
        exec: ([String]) throws -> CollectedRun,
        qxub: ([String]) throws -> CollectedRun
    ) throws {
        let script =
            "i=${PBS_ARRAY_INDEX:-$SLURM_ARRAY_TASK_ID}; echo line $i; echo problem $i >&2; exit $(( i == 2 ? 5 : 0 ))"
        let run = try exec(["--array", "1-3", "--", script])
        #expect(run.exit == .exited(5), "\(run.stderrText)")
        #expect(run.stdoutText.split(separator: "\n").sorted() == ["[1] line 1", "[2] line 2", "[3] line 3"])
        let stderrLines = run.stderrText.split(separator: "\n").map(String.init)
        #expect(
            stderrLines.filter { $0.hasPrefix("[") }.sorted() == ["[1] problem 1", "[2] problem 2", "[3] problem 3"]
        )
        let submitted = try #require(stderrLines.first { $0.hasPrefix("qxub: submitted array job ") })
        #expect(submitted.hasSuffix(": 3 subjobs"), "\(submitted)")
        let arrayID = String(submitted.dropFirst("qxub: submitted array job ".count).dropLast(": 3 subjobs".count))
        let counts = stderrLines.filter { $0.hasPrefix("qxub: array \(arrayID): ") }
        #expect(counts.last == "qxub: array \(arrayID): 2 done, 1 failed", "\(run.stderrText)")
        #expect(!run.stderrText.contains("\r") && !run.stderrText.contains("\u{1B}"), "plain lines off a terminal")
        let subjobID =
            arrayID.contains("[]") ? arrayID.replacingAll("[]", with: "[2]") : arrayID + "_2"
        let attach = try qxub(["attach", subjobID])
        #expect(attach.exit == .exited(5), "\(attach.stderrText)")
        #expect(attach.stdoutText == "line 2\n")
    }

    /// Ctrl-C while following an array: one cancel of the whole array (not one per subjob), every subjob ends
    /// as cancelled, and qxub exits 130 as a cancelled job does. With `cancelCommand` (`qdel`, `scancel`),
    /// that command runs exactly once, with the array's id. Returns the array's id.
    @discardableResult
    func arrayCancelled(cancelCommand: String? = nil) throws -> String {
        let log = sandbox.directory + "/cancel.log"
        if let cancelCommand {
            // The scheduler's command as the agent runs it, logged: a wrapper first on PATH.
            let path = sandbox.environment["PATH"] ?? "/usr/bin:/bin"
            let real = try #require(
                path.split(separator: ":").map { $0 + "/" + cancelCommand }.first { access($0, X_OK) == 0 }
            )
            let shim = sandbox.directory + "/shim"
            try FileSystem.createDirectories(shim, mode: 0o755)
            try FileSystem.writeAtomically(
                shim + "/" + cancelCommand,
                "#!/bin/sh\necho \"$*\" >> \(log)\nexec \(real) \"$@\"\n",
                mode: 0o755
            )
            sandbox.environment["PATH"] = shim + ":" + path
        }
        let script = "i=${PBS_ARRAY_INDEX:-$SLURM_ARRAY_TASK_ID}; echo started $i; sleep 300"
        let child = try sandbox.start(["exec", "--backend", backend, "--array", "1-3", "--", script])
        // Ctrl-C once every subjob runs: each has said so.
        let head = readLines(child.stdout!, count: 3, timeout: 90)
        #expect(head.split(separator: "\n").sorted() == ["[1] started 1", "[2] started 2", "[3] started 3"])
        kill(-child.pid, SIGINT)  // the whole group, as a terminal does
        let run = collect(child, timeout: 90)
        #expect(run.exit == .exited(130), "\(run.stderrText)")
        let lines = run.stderrText.split(separator: "\n").map(String.init)
        let submitted = try #require(lines.first { $0.hasPrefix("qxub: submitted array job ") })
        let arrayID = String(submitted.dropFirst("qxub: submitted array job ".count).dropLast(": 3 subjobs".count))
        #expect(
            lines.filter { $0.hasPrefix("qxub: cancelling") }
                == ["qxub: cancelling array job \(arrayID)… (press Ctrl-C again to leave it running)"],
            "one cancel, of the array: \(run.stderrText)"
        )
        let directory = try #require(sandbox.jobDirectories.first)
        // The agent decided each subjob's end: cancelled through qxub (130), not deleted by someone else (143).
        let ends = sandbox.wait(timeout: 60) {
            (1...3).allSatisfy { FileSystem.readText(directory + "/end.\($0)")?.hasPrefix("130 ") == true }
        }
        #expect(ends, "\((1...3).map { FileSystem.readText(directory + "/end.\($0)") ?? "none" })")
        if cancelCommand != nil { #expect(FileSystem.readText(log) == arrayID + "\n", "one cancel, of the array") }
        return arrayID
    }

    func container() throws {
        let missing = try exec(["--sif", sandbox.directory + "/missing.sif", "--", "echo never"])
        #expect(missing.exit == .exited(78), "\(missing.stderrText)")
        #expect(missing.stderrText.contains("does not exist or is not readable"))
        let image = sandbox.directory + "/image.sif"
        try FileSystem.writeAtomically(image, "fake image")
        let run = try exec(["--sif", image, "--bind", "/a:/b", "--", "echo", "in the container"])
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        #expect(run.stdoutText == "exec --bind /a:/b \(image) echo in the container\n")
    }

    func cancelWhileRunning() throws {
        let child = try sandbox.start(["exec", "--backend", backend, "--", "echo started; sleep 300"])
        // Ctrl-C once qxub follows the running job: its first output has arrived.
        let head = readLines(child.stdout!, count: 1, timeout: 60)
        #expect(head == "started\n", "the job never started")
        kill(-child.pid, SIGINT)  // the whole group, as a terminal does
        let run = collect(child, timeout: 60)
        #expect(run.exit == .exited(130), "\(run.stderrText)")
        #expect(head + run.stdoutText == "started\n")
        #expect(run.stderrText.contains("cancelling job"))
        #expect(run.stderrText.contains("cancelled"))
    }

    func terseQuietDry() throws {
        let terse = try exec(["--terse", "--", "sleep 1; echo done"])
        #expect(terse.exit == .exited(0))
        let id = terse.stdoutText.trimmingWhitespaceForTests()
        #expect(!id.isEmpty && !id.contains(" "), "terse prints only the id: \(terse.stdoutText)")
        let quiet = try exec(["--quiet", "--", "echo hidden; echo hidden >&2; exit 5"])
        #expect(quiet.exit == .exited(5))
        #expect(quiet.stdout.isEmpty && quiet.stderr.isEmpty)
        let before = sandbox.jobDirectories.count
        let dry = try exec(["--dry", "--mem", "2GB", "--", "echo $X"])
        #expect(dry.exit == .exited(0))
        #expect(dry.stdoutText.contains("#!/bin/bash"))
        #expect(dry.stdoutText.contains("echo $X"))
        #expect(sandbox.jobDirectories.count == before, "a dry run submits nothing")
    }
}

extension String {
    func trimmingWhitespaceForTests() -> String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}

/// Fake `conda` and `module` commands for activation tests.
let fakeActivationTools: [String: String] = [
    "conda": """
    case "$1" in
      shell.bash) echo 'conda() { command conda "$@"; }' ;;
      activate) if [ "$2" = good ]; then exit 0; fi; echo "EnvironmentNameNotFound: Could not find conda environment: $2" >&2; exit 1 ;;
    esac
    """,
    // Prints how it was called, then runs the command (as `singularity exec IMAGE CMD` would, inside).
    "singularity": """
    echo "$@"
    """,
    "module": """
    [ "$1" = load ] || exit 0
    [ "$2" = bad ] && { echo "ERROR: Unable to locate a modulefile for '$2'" >&2; exit 1; }
    exit 0
    """,
]
