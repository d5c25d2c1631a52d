import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `qxub interactive` through the built qxub and agent, driven on a pseudo-terminal as a user's terminal
/// drives it: the local backend (the agent a local child), keys in, the screen out, resizes, Ctrl-C, the exit
/// status, the terminal's mode restored, and a session that survives its connection.
@Suite("Interactive jobs (local backend)", .serialized)
struct InteractiveTests {
    /// A shell on the job's terminal with a prompt the test can wait for.
    static func sandbox(_ label: String) throws -> Sandbox {
        // The user's shell: bash without the machine's rc files (which set their own prompt).
        let sandbox = try Sandbox(label)
        try FileSystem.writeAtomically(sandbox.directory + "/rc", "PS1='qxi$ '\n")
        let shell = "exec /bin/bash --rcfile \(sandbox.directory)/rc --noprofile \"$@\"\n"
        try FileSystem.writeAtomically(sandbox.directory + "/bin/testshell", "#!/bin/bash\n" + shell, mode: 0o755)
        sandbox.environment["SHELL"] = sandbox.directory + "/bin/testshell"
        sandbox.environment["QXUB_SCHEDULER"] = "local"
        sandbox.environment["TERM"] = "xterm"
        return sandbox
    }

    static func start(_ sandbox: Sandbox, _ arguments: [String]) throws -> TerminalHarness {
        try TerminalHarness([BuiltProducts.qxub] + arguments, environment: sandbox.environmentList)
    }

    @Test("a shell on a terminal: keys in, output out, resize seen by stty, Ctrl-C reaches the job, exit 3 is qxub's")
    func shell() throws {
        let sandbox = try Self.sandbox("interactive-shell")
        let session = try Self.start(sandbox, ["interactive"])
        let before = try session.mode()
        #expect(session.waitFor("qxi$ "), "no prompt: \(session.text)")
        try session.type("echo hel''lo-there\r")
        #expect(session.waitFor("hello-there"), "\(session.text)")
        try InteractiveShellScenario(resize: (30, 100), exitTimeout: 30).run(session, modeBefore: before)
    }

    @Test("a command on a terminal: it has a tty, reads a typed line, and its exit status is qxub's")
    func command() throws {
        let sandbox = try Self.sandbox("interactive-command")
        let session = try Self.start(
            sandbox,
            ["interactive", "--", "bash", "-c", "tty; read -r line; echo got-$line; exit 4"]
        )
        #expect(session.waitFor("/dev/pts/"), "the command has no terminal: \(session.text)")
        try session.type("abc\r")
        #expect(session.waitFor("got-abc"), "\(session.text)")
        #expect(session.waitForExit(timeout: 30) == .exited(4), "\(session.text)")
    }

    @Test("the agent killed mid-session: qxub reconnects and the shell is the same process")
    func agentKilled() throws {
        let sandbox = try Self.sandbox("interactive-reconnect")
        let session = try Self.start(sandbox, ["interactive"])
        #expect(session.waitFor("qxi$ "), "no prompt: \(session.text)")
        try session.type("MARK=4$((1+1)); echo set-$MARK\r")
        #expect(session.waitFor("set-42"), "\(session.text)")
        let agents = Self.children(of: session.child.pid, named: "qxub-agent")
        try #require(!agents.isEmpty, "no local agent under qxub")
        for pid in agents { kill(pid, SIGKILL) }
        #expect(session.waitFor("reconnected"), "\(session.text)")
        try session.type("echo again-$MARK\r")
        #expect(session.waitFor("again-42"), "not the same shell after the reconnect: \(session.text)")
        try session.type("exit 0\r")
        #expect(session.waitForExit(timeout: 30) == .exited(0), "\(session.text)")
    }

    @Test("qxub killed: `qxub attach ID` takes the terminal back, recent output replayed, the same shell")
    func attach() throws {
        let sandbox = try Self.sandbox("interactive-attach")
        let first = try Self.start(sandbox, ["interactive"])
        #expect(first.waitFor("qxi$ "), "no prompt: \(first.text)")
        try first.type("MARK=7$((3*3)); echo before-the-cut-$MARK\r")
        #expect(first.waitFor("before-the-cut-79"), "\(first.text)")
        let jobID = try #require(sandbox.submittedJobID(timeout: 10))
        kill(-first.child.pid, SIGKILL)
        _ = first.waitForExit(timeout: 10)

        let second = try Self.start(sandbox, ["attach", jobID])
        #expect(second.waitFor("before-the-cut-79"), "the recent output was not replayed: \(second.text)")
        try second.type("echo after-the-cut-$MARK\r")
        #expect(second.waitFor("after-the-cut-79"), "not the same shell: \(second.text)")
        try second.type("exit 5\r")
        #expect(second.waitForExit(timeout: 30) == .exited(5), "\(second.text)")
    }

    @Test("nobody takes the terminal back within --grace: the keeper ends the job, and attach says why")
    func graceExpires() throws {
        let sandbox = try Self.sandbox("interactive-grace")
        let first = try Self.start(sandbox, ["interactive", "--grace", "1s"])
        #expect(first.waitFor("qxi$ "), "no prompt: \(first.text)")
        let jobID = try #require(sandbox.submittedJobID(timeout: 10))
        let directory = try #require(sandbox.jobDirectories.first)
        kill(-first.child.pid, SIGKILL)
        _ = first.waitForExit(timeout: 10)
        #expect(sandbox.wait(timeout: 30) { FileSystem.exists(directory + "/keeper-ended") })
        let run = try sandbox.qxub(["attach", jobID], timeout: 60)
        #expect(run.exit == .exited(143), "\(run.stderrText)")
        #expect(
            run.stderrText.contains("no qxub was attached for 1 s; the interactive session was ended"),
            "\(run.stderrText)"
        )
    }

    @Test("qxi is qxub interactive: --dry shows qsub -I with the job's options, the default name and 4 h")
    func qxiDry() throws {
        let sandbox = try Self.sandbox("interactive-qxi")
        sandbox.environment["QXUB_SCHEDULER"] = "pbspro"
        let qxi = sandbox.directory + "/bin/qxi"
        #expect(symlink(BuiltProducts.qxub, qxi) == 0)
        let run = try runCollectingOutput(
            [qxi, "--dry", "-q", "normal", "--mem", "4GB", "--", "ipython"],
            environment: sandbox.environmentList,
            stdinBytes: [],
            timeout: 60
        )
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        let expected = try #require(
            run.stdoutText.split(separator: "\n").first { $0.hasPrefix("# submission command: ") }
        )
        #expect(
            expected.hasPrefix(
                "# submission command: qsub -I -N qxub-interactive -q normal -l walltime=4:00:00 -l mem=4GB -- /bin/bash "
            ),
            "\(expected)"
        )
        #expect(expected.hasSuffix("/job.sh"))
        #expect(run.stdoutText.contains("ipython"), "the wrapper runs the command")
    }

    @Test("without a terminal: a usage error that says to use exec")
    func noTerminal() throws {
        let sandbox = try Self.sandbox("interactive-notty")
        let run = try sandbox.qxub(["interactive"], stdin: "")
        #expect(run.exit == .exited(64))
        #expect(run.stderrText.contains("qxub interactive needs a terminal"), "\(run.stderrText)")
    }

    /// Descendants of `pid` whose command line mentions `name`.
    static func children(of pid: pid_t, named name: String) -> [pid_t] {
        let listing = (try? runCollectingOutput(["ps", "-eo", "pid=,ppid=,args="], timeout: 10))?.stdoutText ?? ""
        var parents: [pid_t: pid_t] = [:]
        var commands: [pid_t: String] = [:]
        for line in listing.split(separator: "\n") {
            let fields = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
            guard fields.count == 3, let child = pid_t(fields[0]), let parent = pid_t(fields[1]) else { continue }
            parents[child] = parent
            commands[child] = String(fields[2])
        }
        func descends(_ candidate: pid_t) -> Bool {
            var current = parents[candidate]
            while let value = current, value > 1 {
                if value == pid { return true }
                current = parents[value]
            }
            return false
        }
        return commands.filter { $0.value.contains(name) && $0.value.contains(" serve") && descends($0.key) }.map(\.key)
    }
}
