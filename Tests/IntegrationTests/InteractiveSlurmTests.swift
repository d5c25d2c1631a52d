import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `qxub interactive --backend slurm` on the real single-node Slurm of Tests/Support/slurm.sh: `srun --pty` runs
/// the wrapper on the compute node.
@Suite("Interactive jobs on a real Slurm", .serialized)
struct InteractiveSlurmTests {
    static func sandbox(_ label: String) throws -> Sandbox {
        let sandbox = try InteractiveTests.sandbox("slurm-" + label)
        for (key, value) in try Components.slurm() { sandbox.environment[key] = value }
        sandbox.environment["QXUB_SCHEDULER"] = nil
        return sandbox
    }

    /// Runs a Slurm command with the sandbox's environment (SLURM_CONF); its stdout, trimmed.
    static func slurm(_ arguments: [String], _ sandbox: Sandbox) throws -> String {
        let run = try runCollectingOutput(arguments, environment: sandbox.environmentList, timeout: 60)
        #expect(run.exit == .exited(0), "\(arguments.joined(separator: " ")): \(run.stderrText)")
        return run.stdoutText.trimmingWhitespaceForTests()
    }

    @Test("a shell on the compute node: keys, output, resize, Ctrl-C to the job, exit 3 is qxub's, mode restored")
    func shell() throws {
        let sandbox = try Self.sandbox("shell")
        let session = try InteractiveTests.start(sandbox, ["interactive", "--backend", "slurm", "--time", "10m"])
        let before = try session.mode()
        #expect(session.waitFor("qxi$ ", timeout: 120), "no prompt: \(session.text)")
        try session.type("echo in-job-$((SLURM_JOB_ID > 0))-$(tty)\r")
        #expect(session.waitFor("in-job-1-/dev/pts/"), "not in a Slurm job, or no terminal: \(session.text)")
        try InteractiveShellScenario(resize: (31, 99), prompt: nil).run(session, modeBefore: before)
    }

    @Test("queued behind a DOWN partition: the status line says queued, Ctrl-C cancels the request, exit 130")
    func cancelWhileQueued() throws {
        let sandbox = try Self.sandbox("queued")
        // A partition of this test's own, DOWN: Slurm accepts the job and starts none (the default partition,
        // which other suites use at the same time, stays UP).
        let partition = "qxihold\(getpid() % 10000)"
        _ = try Self.slurm(["scontrol", "create", "PartitionName=" + partition, "Nodes=ALL", "State=DOWN"], sandbox)
        defer {
            _ = try? runCollectingOutput(["scancel", "-p", partition], environment: sandbox.environmentList)
            _ = try? runCollectingOutput(
                ["scontrol", "delete", "PartitionName=" + partition],
                environment: sandbox.environmentList
            )
        }
        let session = try InteractiveTests.start(sandbox, ["interactive", "--backend", "slurm", "-q", partition])
        #expect(session.waitFor(" queued (", timeout: 60), "no queued status line: \(session.text)")
        var pending = ""
        #expect(
            sandbox.wait(timeout: 30) {
                pending = (try? Self.slurm(["squeue", "-h", "-p", partition, "-o", "%i %T %r"], sandbox)) ?? ""
                return pending.hasSuffix("PENDING PartitionDown")
            },
            "Slurm does not hold the job back: \(pending)"
        )
        // srun's own messages are shown while the job waits, on lines of their own (the status line makes way).
        let id = try #require(pending.split(separator: " ").first.map(String.init))
        #expect(session.waitFor("srun: job \(id) queued and waiting for resources"), "\(session.text)")
        #expect(session.text.contains("\r\u{1B}[Ksrun: "), "\(session.text)")
        // Ctrl-C typed: the terminal is still in normal mode, so its line discipline signals qxub.
        try session.type("\u{03}")
        #expect(session.waitForExit(timeout: 60) == .exited(130), "\(session.text)")
        #expect(session.text.contains("cancelled before it started"), "\(session.text)")
        #expect(
            sandbox.wait(timeout: 30) {
                (try? Self.slurm(["squeue", "-h", "-p", partition, "-o", "%i %T"], sandbox)) == ""
            },
            "the request is still in Slurm's queue: \(pending)"
        )
    }
}
