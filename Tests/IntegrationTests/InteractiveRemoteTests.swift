import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension RemoteTests {
    /// `qxub interactive` from a laptop through the real sshd of Tests/Support/sshd.sh (the local backend on the
    /// far side), driven on a pseudo-terminal: the shell session, a connection cut under it, `qxub attach` after
    /// qxub was killed. The cluster's users and homes are shared with ``RemoteTests``, so one at a time.
    @Suite("Interactive jobs from a laptop through sshd (one at a time with the remote suite: its cluster users)")
    struct Interactive {
        /// A laptop with the agent installed on `bashbox`, whose user's interactive bash shows `qxi$ `.
        static func remote(_ label: String) throws -> RemoteTests.Remote {
            let remote = try RemoteTests().remote("interactive-" + label)
            remote.sandbox.environment["TERM"] = "xterm"
            // The job's shell is the login user's (`${SHELL} -i`): its rc file gives the prompt the test waits for.
            let rc = try remote.sshRun("qxub-bash", "echo \"PS1='qxi\\$ '\" > $HOME/.bashrc")
            #expect(rc.exit == .exited(0), "\(rc.stderrText)")
            let install = try remote.qxub(["agent", "install", "--platform", "bashbox"])
            #expect(install.exit == .exited(0), "\(install.stderrText)")
            return remote
        }

        static func start(_ remote: RemoteTests.Remote, _ arguments: [String]) throws -> TerminalHarness {
            try TerminalHarness([BuiltProducts.qxub] + arguments, environment: remote.sandbox.environmentList)
        }

        /// The id of the only interactive job in the laptop's history (qxub records it as soon as the agent names it).
        static func interactiveJobID(_ sandbox: Sandbox, timeout: Double = 30) -> String? {
            var id: String?
            _ = sandbox.wait(timeout: timeout) {
                let run = try? sandbox.qxub(["history", "--limit", "10"], timeout: 30)
                id = (run?.stdoutText ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" }).first {
                    $0.hasPrefix("interactive-")
                }.map(String.init)
                return id != nil
            }
            return id
        }

        @Test(
            "a shell on the cluster: keys in, output out, stty size after a resize, Ctrl-C to the job, exit 3 is qxub's"
        )
        func shell() throws {
            let remote = try Self.remote("shell")
            let session = try Self.start(remote, ["interactive", "--platform", "bashbox", "--backend", "local"])
            let before = try session.mode()
            #expect(session.waitFor("qxi$ ", timeout: 60), "no prompt: \(session.text)")
            try session.type("echo hel''lo-from-$(whoami)\r")
            #expect(session.waitFor("hello-from-\(remote.bashUser)"), "not the cluster's user: \(session.text)")
            try session.type("stty size\r")
            #expect(session.waitFor("24 80"), "\(session.text)")
            try session.resize(rows: 33, columns: 101)
            try session.type("stty size\r")
            #expect(session.waitFor("33 101"), "the job's terminal did not get the new size: \(session.text)")
            try session.type("echo sleeping; sleep 30\r")
            #expect(session.waitFor("sleeping\r\n"), "\(session.text)")
            try session.type("\u{03}")
            #expect(session.waitFor("qxi$ "), "\(session.text)")
            try session.type("echo status=$?\r")
            #expect(session.waitFor("status=130"), "Ctrl-C did not end the remote foreground program: \(session.text)")
            #expect(session.child.poll() == nil, "Ctrl-C ended qxub: \(session.text)")
            try session.type("exit 3\r")
            #expect(session.waitForExit(timeout: 60) == .exited(3), "\(session.text)")
            #expect(try session.mode() == before, "the terminal's mode was not restored")
        }

        @Test(
            "the connection cut mid-session (ssh killed, then the agent): qxub reconnects by itself, the same shell",
            arguments: ["ssh", "agent"]
        )
        func connectionCut(victim: String) throws {
            let remote = try Self.remote("cut-" + victim)
            let session = try Self.start(remote, ["interactive", "--platform", "bashbox", "--backend", "local"])
            #expect(session.waitFor("qxi$ ", timeout: 60), "no prompt: \(session.text)")
            try session.type("MARK=4$((1+1)); echo set-$MARK\r")
            #expect(session.waitFor("set-42"), "\(session.text)")
            if victim == "ssh" {
                let sessions = remote.sessionProcesses()
                try #require(!sessions.isEmpty, "no ssh session of this laptop")
                for pid in sessions { kill(pid, SIGKILL) }
            } else {
                let kill = try remote.sshRun("qxub-bash", "pkill -KILL -u \(remote.bashUser) -f 'qxub-agent serve'")
                #expect(kill.exit == .exited(0), "no agent to kill: \(kill.stderrText)")
            }
            #expect(session.waitFor("reconnected", timeout: 60), "\(session.text)")
            try session.type("echo again-$MARK\r")
            #expect(session.waitFor("again-42"), "not the same shell after the reconnect: \(session.text)")
            try session.type("exit 0\r")
            #expect(session.waitForExit(timeout: 60) == .exited(0), "\(session.text)")
        }

        @Test("qxub killed: `qxub attach ID --platform P` takes the terminal back, output replayed, the same shell")
        func attach() throws {
            let remote = try Self.remote("attach")
            let first = try Self.start(remote, ["interactive", "--platform", "bashbox", "--backend", "local"])
            #expect(first.waitFor("qxi$ ", timeout: 60), "no prompt: \(first.text)")
            try first.type("MARK=7$((3*3)); echo before-the-cut-$MARK\r")
            #expect(first.waitFor("before-the-cut-79"), "\(first.text)")
            let jobID = try #require(Self.interactiveJobID(remote.sandbox), "qxub did not record the job")
            kill(-first.child.pid, SIGKILL)
            #expect(first.waitForExit(timeout: 10) == .signaled(SIGKILL))

            let second = try Self.start(remote, ["attach", jobID, "--platform", "bashbox"])
            #expect(
                second.waitFor("before-the-cut-79", timeout: 60),
                "the recent output was not replayed: \(second.text)"
            )
            try second.type("echo after-the-cut-$MARK\r")
            #expect(second.waitFor("after-the-cut-79"), "not the same shell: \(second.text)")
            try second.type("exit 5\r")
            #expect(second.waitForExit(timeout: 60) == .exited(5), "\(second.text)")
        }

        @Test("a shell on the real Slurm's compute node from the laptop: srun --pty under the remote agent, exit 3")
        func slurmShell() throws {
            let slurm = try Components.slurm()
            let remote = try Self.remote("slurm")
            // The login node's user reaches the test Slurm through its login files, as on a cluster.
            let login = try remote.sshRun(
                "qxub-bash",
                "echo 'export SLURM_CONF=\(slurm["SLURM_CONF"] ?? "")' >> $HOME/.bashrc"
            )
            #expect(login.exit == .exited(0), "\(login.stderrText)")
            let session = try Self.start(
                remote,
                ["interactive", "--platform", "bashbox", "--backend", "slurm", "--time", "10m"]
            )
            let before = try session.mode()
            #expect(session.waitFor("qxi$ ", timeout: 120), "no prompt: \(session.text)")
            try session.type("echo in-job-$((SLURM_JOB_ID > 0))-$(whoami)-$(tty)\r")
            #expect(
                session.waitFor("in-job-1-\(remote.bashUser)-/dev/pts/"),
                "not the cluster user's Slurm job, or no terminal: \(session.text)"
            )
            try session.resize(rows: 31, columns: 99)
            try session.type("stty size\r")
            #expect(session.waitFor("31 99"), "the job's terminal did not get the new size: \(session.text)")
            try session.type("exit 3\r")
            #expect(session.waitForExit(timeout: 60) == .exited(3), "\(session.text)")
            #expect(try session.mode() == before, "the terminal's mode was not restored")
        }
    }
}

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
        try session.type("stty size\r")
        #expect(session.waitFor("24 80"), "\(session.text)")
        try session.resize(rows: 31, columns: 99)
        try session.type("stty size\r")
        #expect(session.waitFor("31 99"), "the job's terminal did not get the new size: \(session.text)")
        // Ctrl-C reaches the job's foreground program through the scheduler's terminal, not qxub.
        try session.type("echo sleeping; sleep 30\r")
        #expect(session.waitFor("sleeping\r\n"), "\(session.text)")
        try session.type("\u{03}")
        try session.type("echo status=$?\r")
        #expect(session.waitFor("status=130"), "Ctrl-C did not end the job's sleep: \(session.text)")
        #expect(session.child.poll() == nil, "Ctrl-C ended qxub: \(session.text)")
        try session.type("exit 3\r")
        #expect(session.waitForExit(timeout: 60) == .exited(3), "\(session.text)")
        #expect(try session.mode() == before, "the terminal's mode was not restored")
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

extension RealPBSTests {
    /// `qxub interactive --backend pbspro` on the real OpenPBS of Tests/Support/openpbs.sh, as its unprivileged user
    /// on the login node: `qsub -I -- /bin/bash job.sh` runs the wrapper on the job's terminal.
    @Suite("Interactive jobs on a real OpenPBS (one at a time with the lane: the server and its sshd are shared)")
    struct Interactive {
        static func sandbox(_ label: String) throws -> PBSUserSandbox {
            let sandbox = try PBSUserSandbox("interactive-" + label)
            sandbox.extraEnvironment["TERM"] = "xterm"
            return sandbox
        }

        static func start(_ sandbox: PBSUserSandbox, _ arguments: [String]) throws -> TerminalHarness {
            try TerminalHarness(
                sandbox.asUser([sandbox.bin + "/qxub"] + arguments),
                environment: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                rows: 33,
                columns: 101
            )
        }

        /// A PBS command (`qmgr`, `qselect`, `qstat`) as root, a manager of the server, inside its namespace.
        static func pbsRoot(_ arguments: [String]) throws -> CollectedRun {
            let env = try RealPBS.environment()
            return try runCollectingOutput(
                [
                    "ip", "netns", "exec", env["QXUB_PBS_NETNS"] ?? "", "env",
                    "PBS_CONF_FILE=" + (env["PBS_CONF_FILE"] ?? ""),
                    (env["QXUB_PBS_PATH"] ?? "") + "/" + arguments[0],
                ] + arguments.dropFirst(),
                timeout: 60
            )
        }

        /// A queue of the test's own that takes jobs and starts none (the server's other queues go on).
        static func stoppedQueue() throws -> String {
            let queue = "qxihold\(getpid() % 10000)"
            for line in [
                "create queue \(queue) queue_type=execution", "set queue \(queue) enabled=True",
                "set queue \(queue) started=False",
            ] {
                let run = try pbsRoot(["qmgr", "-c", line])
                #expect(run.exit == .exited(0), "qmgr -c '\(line)': \(run.stderrText)")
            }
            return queue
        }

        static func remove(_ queue: String) {
            for id in queuedJobs(queue).split(separator: "\n") {
                _ = try? pbsRoot(["qdel", "-W", "force", String(id)])
            }
            _ = try? pbsRoot(["qmgr", "-c", "delete queue \(queue)"])
        }

        /// The ids of the jobs waiting in `queue`, one a line.
        static func queuedJobs(_ queue: String) -> String {
            ((try? pbsRoot(["qselect", "-q", queue, "-s", "Q"]))?.stdoutText ?? "").trimmingWhitespaceForTests()
        }

        /// Whether PBS has let `id` go (finished, or forgotten without history).
        static func released(_ id: String) -> Bool {
            let stat = try? pbsRoot(["qstat", "-f", id])
            return stat?.exit != .exited(0) || stat?.stdoutText.contains("job_state = F") == true
        }

        /// Ctrl-C while the job waits in a stopped queue: the status line says queued, qsub's own message shows, the
        /// request is deleted and qxub exits 130.
        static func cancelWhileQueued(_ session: TerminalHarness, queue: String, wait: (Double, () -> Bool) -> Bool) {
            #expect(session.waitFor(" queued (", timeout: 60), "no queued status line: \(session.text)")
            var id = ""
            #expect(
                wait(60) {
                    id = queuedJobs(queue)
                    return !id.isEmpty
                },
                "PBS does not queue the job: \(session.text)"
            )
            // qsub's own message is shown while the job waits, on a line of its own (the status line makes way).
            #expect(session.waitFor("\r\u{1B}[Kqsub: waiting for job \(id) to start"), "\(session.text)")
            // Ctrl-C typed: the terminal is still in normal mode, so its line discipline signals qxub.
            do { try session.type("\u{03}") } catch { Issue.record(error) }
            #expect(session.waitForExit(timeout: 60) == .exited(130), "\(session.text)")
            #expect(session.text.contains("cancelled before it started"), "\(session.text)")
            #expect(wait(60) { released(id) }, "job \(id) is still in PBS's queue")
        }

        @Test("a shell on the compute node: keys, output, Ctrl-C to the job, exit 3 is qxub's (qsub -I exits 0)")
        func shell() throws {
            let sandbox = try Self.sandbox("shell")
            let session = try Self.start(sandbox, ["interactive", "--backend", "pbspro", "--time", "10m"])
            let before = try session.mode()
            // The job's shell is the PBS user's own login shell, with its own prompt: the job is running once qxub
            // says so, and what is typed from then on is the shell's.
            #expect(session.waitFor(" running on ", timeout: 120), "the job did not start: \(session.text)")
            try session.type("echo in-job-$((${#PBS_JOBID} > 0))-$(tty)\r")
            #expect(session.waitFor("in-job-1-/dev/pts/"), "not in a PBS job, or no terminal: \(session.text)")
            // OpenPBS's qsub -I sends the window's size once, as it connects to the job (it has no SIGWINCH
            // handler): the size the job starts with is the one to check.
            try session.type("stty size\r")
            #expect(session.waitFor("33 101"), "the job's terminal does not have the window's size: \(session.text)")
            // Ctrl-C reaches the job's foreground program through the scheduler's terminal, not qxub.
            try session.type("echo sleeping; sleep 30\r")
            #expect(session.waitFor("sleeping\r\n"), "\(session.text)")
            try session.type("\u{03}")
            try session.type("echo status=$?\r")
            #expect(session.waitFor("status=130"), "Ctrl-C did not end the job's sleep: \(session.text)")
            #expect(session.child.poll() == nil, "Ctrl-C ended qxub: \(session.text)")
            try session.type("exit 3\r")
            #expect(session.waitForExit(timeout: 60) == .exited(3), "\(session.text)")
            #expect(try session.mode() == before, "the terminal's mode was not restored")
        }

        @Test("queued in a stopped queue: the status line says queued, Ctrl-C deletes the request, exit 130")
        func cancelWhileQueued() throws {
            let sandbox = try Self.sandbox("queued")
            let queue = try Self.stoppedQueue()
            defer { Self.remove(queue) }
            let session = try Self.start(sandbox, ["interactive", "--backend", "pbspro", "-q", queue])
            Self.cancelWhileQueued(session, queue: queue) { sandbox.wait(timeout: $0, $1) }
        }

        /// From a laptop: qxub inside the PBS namespace reaches the login node through the real sshd there
        /// (``RealPBSTests/remote(_:history:)``), whose agent runs `qsub -I` on its keeper's terminal.
        static func remote(_ label: String) throws -> Sandbox {
            let sandbox = try RealPBSTests().remote("interactive-" + label, history: false)
            sandbox.environment["TERM"] = "xterm"
            return sandbox
        }

        static func start(_ sandbox: Sandbox, _ arguments: [String]) throws -> TerminalHarness {
            try TerminalHarness(
                sandbox.commandPrefix + [BuiltProducts.qxub] + arguments,
                environment: sandbox.environmentList,
                rows: 33,
                columns: 101
            )
        }

        @Test("from a laptop through sshd: a shell on the compute node, exit 3 is qxub's, the terminal's mode restored")
        func remoteShell() throws {
            let sandbox = try Self.remote("shell")
            let session = try Self.start(sandbox, ["interactive", "--platform", "pbsbox", "--time", "10m"])
            let before = try session.mode()
            #expect(session.waitFor(" running on ", timeout: 120), "the job did not start: \(session.text)")
            try session.type("echo in-job-$((${#PBS_JOBID} > 0))-$(tty)-$(stty size)\r")
            #expect(session.waitFor("in-job-1-/dev/pts/"), "not in a PBS job, or no terminal: \(session.text)")
            #expect(session.waitFor("-33 101"), "the job's terminal does not have the window's size: \(session.text)")
            try session.type("exit 3\r")
            #expect(session.waitForExit(timeout: 60) == .exited(3), "\(session.text)")
            #expect(try session.mode() == before, "the terminal's mode was not restored")
        }

        @Test("from a laptop through sshd: Ctrl-C while queued deletes the request, exit 130")
        func remoteCancelWhileQueued() throws {
            let sandbox = try Self.remote("queued")
            let queue = try Self.stoppedQueue()
            defer { Self.remove(queue) }
            let session = try Self.start(sandbox, ["interactive", "--platform", "pbsbox", "-q", queue])
            Self.cancelWhileQueued(session, queue: queue) { sandbox.wait(timeout: $0, $1) }
        }
    }
}
