import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

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
            try InteractiveShellScenario(size: "33 101", prompt: nil).run(session, modeBefore: before)
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
