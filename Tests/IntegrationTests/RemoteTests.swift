import QxubProtocol
import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// qxub from a "laptop" to a "cluster" through a real OpenSSH sshd on loopback (Tests/Support/sshd.sh),
/// with bash and tcsh login shells. The cluster's users and homes are shared, so these run one at a time.
@Suite("Remote execution over one ssh connection", .serialized)
struct RemoteTests {
    struct Remote {
        let sandbox: Sandbox
        let ssh: [String: String]
        /// The cluster users and homes of the sshd instance (QXUB_SSHD_USER_PREFIX, QXUB_SSHD_HOMES).
        var bashUser: String { ssh["QXUB_TEST_SSH_BASH_USER"]! }
        var bashHome: String { ssh["QXUB_TEST_SSH_BASH_HOME"]! }
        var tcshHome: String { ssh["QXUB_TEST_SSH_TCSH_HOME"]! }
        var homes: String { FileSystem.directoryName(bashHome) }

        func sshRun(_ host: String, _ command: String) throws -> CollectedRun {
            try runCollectingOutput(["ssh", "-F", ssh["QXUB_TEST_SSH_CONFIG"]!, host, command], timeout: 60)
        }

        func qxub(_ arguments: [String], timeout: Double = 120) throws -> CollectedRun {
            try sandbox.qxub(arguments, timeout: timeout)
        }

        /// The ssh processes of this sandbox's sessions (not the master).
        func sessionProcesses() -> [pid_t] {
            let run = try? runCollectingOutput(["pgrep", "-f", "set -- 1 1; [.] [.]qxub/bin/qxub-shim"])
            return (run?.stdoutText ?? "").split(separator: "\n").compactMap { pid_t($0) }.filter { pid in
                (FileSystem.readText("/proc/\(pid)/cmdline") ?? "").containsText(sandbox.directory)
            }
        }
    }

    /// A fresh laptop (its own config and control sockets) and clean cluster homes.
    /// - Parameter sessionPersist: `session_persist` of the bash platform (nil: the default, holders on).
    func remote(_ label: String, sessionPersist: String? = nil) throws -> Remote {
        let ssh = try Components.sshd()
        let sandbox = try Sandbox("remote-" + label)
        try sandbox.configureRemote(
            [
                .init(
                    name: "bashbox",
                    host: "qxub-bash",
                    workingDirectory: FileSystem.directoryName(ssh["QXUB_TEST_SSH_BASH_HOME"]!) + "/{{user}}/work",
                    sessionPersist: sessionPersist
                ),
                .init(name: "tcshbox", host: "qxub-tcsh"),
            ],
            ssh: ssh
        )
        let remote = Remote(sandbox: sandbox, ssh: ssh)
        for host in ["qxub-bash", "qxub-tcsh"] {
            _ = try remote.sshRun(
                host,
                "sh -c 'pkill -u $(id -u) -f \"[q]xub-agent serve\"; rm -rf $HOME/.qxub $HOME/.bashrc $HOME/.cshrc $HOME/.tcshrc $HOME/work $HOME/planted-code-ran $HOME/readonly $HOME/project; mkdir -p $HOME/work'"
            )
        }
        return remote
    }

    @Test(
        "bash and tcsh login shells: agent missing → a clear message; install → jobs run; status lists it",
        arguments: ["bashbox", "tcshbox"]
    )
    func installAndRun(platform: String) throws {
        let remote = try remote("install-" + platform)
        let missing = try remote.qxub(["exec", "--platform", platform, "--backend", "local", "--", "echo never"])
        #expect(missing.exit == .exited(69), "\(missing.stderrText)")
        #expect(missing.stderrText.contains("qxub agent install --platform \(platform)"))

        let install = try remote.qxub(["agent", "install", "--platform", platform])
        #expect(install.exit == .exited(0), "\(install.stderrText)")
        #expect(install.stdoutText.contains("installed qxub-agent \(QxubVersion.current)"))

        let run = try remote.qxub([
            "exec", "--platform", platform, "--backend", "local", "--create-execdir", "--", "python3", "-c",
            "import os,sys; print(os.getcwd()); print('to stderr', file=sys.stderr); sys.exit(6)",
        ])
        #expect(run.exit == .exited(6), "\(run.stderrText)")
        #expect(run.stderrText.contains("to stderr\n"))
        if platform == "bashbox" {
            #expect(run.stdoutText == remote.bashHome + "/work\n", "{{user}} resolves on the cluster")
        } else {
            #expect(run.stdoutText == remote.tcshHome + "\n", "no working_dir: the remote home")
        }

        if platform == "bashbox" {
            // {user} in --execdir is the cluster's user (the bash host's), not this machine's.
            let execdir = try remote.qxub([
                "exec", "--platform", platform, "--backend", "local", "--execdir", remote.homes + "/{user}", "--",
                "pwd",
            ])
            #expect(execdir.stdoutText == remote.bashHome + "\n", "\(execdir.stderrText)")
            let python = try remote.qxub([
                "exec", "--platform", platform, "--backend", "local", "--execdir", remote.homes + "/{{user}}", "--",
                "pwd",
            ])
            #expect(python.stdoutText == remote.bashHome + "\n", "the Python qxub's {{user}}: \(python.stderrText)")
        }

        let status = try remote.qxub(["agent", "status", "--platform", platform])
        #expect(status.stdoutText.contains("\(QxubVersion.current)  protocol 1 1  linux-"))

        let uninstall = try remote.qxub(["agent", "uninstall", "--platform", platform])
        #expect(uninstall.exit == .exited(0), "\(uninstall.stderrText)")
        let gone = try remote.qxub(["exec", "--platform", platform, "--backend", "local", "--", "true"])
        #expect(gone.exit == .exited(69))
    }

    @Test("a dynamically linked agent is refused for a cluster, with the static one named")
    func dynamicAgentRefused() throws {
        let remote = try remote("dynamic-agent")
        // A dynamically linked Swift executable of our own (the client, which is never linked statically),
        // under the agent's name: every build links the agent itself statically (Package.swift).
        let dynamic = remote.sandbox.directory + "/dynamic/qxub-agent"
        try FileSystem.createDirectories(FileSystem.directoryName(dynamic), mode: 0o755)
        try FileSystem.writeAtomically(
            dynamic,
            try #require(FileSystem.read(BuiltProducts.qxub, limit: 256 << 20)),
            mode: 0o755
        )
        remote.sandbox.environment["QXUB_AGENT"] = dynamic
        remote.sandbox.environment["QXUB_SHIM"] = FileSystem.directoryName(BuiltProducts.agent) + "/qxub-shim"
        let install = try remote.qxub(["agent", "install", "--platform", "bashbox"])
        #expect(install.exit == .exited(69), "\(install.stderrText)")
        #expect(
            install.stderrText.contains("is dynamically linked")
                && install.stderrText.contains("install/build-agent.sh"),
            "\(install.stderrText)"
        )
        let agents = try remote.sshRun("qxub-bash", "ls $HOME/.qxub/agent 2>/dev/null | wc -l")
        #expect(agents.stdoutText.trimmingWhitespaceForTests() == "0", "nothing was sent")
        // The static agent the test command builds is accepted.
        remote.sandbox.environment["QXUB_AGENT"] = BuiltProducts.agent
        remote.sandbox.environment["QXUB_SHIM"] = nil
        #expect(try remote.qxub(["agent", "install", "--platform", "bashbox"]).exit == .exited(0))
    }

    @Test("install --dir into a directory with other files; uninstall removes only what install wrote")
    func installDirUninstall() throws {
        let remote = try remote("installdir")
        _ = try remote.sshRun(
            "qxub-bash",
            "mkdir -p $HOME/project/tools && echo precious > $HOME/project/tools/keep.txt"
        )
        let install = try remote.qxub([
            "agent", "install", "--platform", "bashbox", "--dir", remote.bashHome + "/project/tools",
        ])
        #expect(install.exit == .exited(0), "\(install.stderrText)")
        let run = try remote.qxub(["exec", "--platform", "bashbox", "--backend", "local", "--", "echo from --dir"])
        #expect(run.stdoutText == "from --dir\n", "\(run.stderrText)")
        let uninstall = try remote.qxub(["agent", "uninstall", "--platform", "bashbox"])
        #expect(uninstall.exit == .exited(0), "\(uninstall.stderrText)")
        #expect(uninstall.stdoutText.contains("removed 1 agent version"), "\(uninstall.stdoutText)")
        let left = try remote.sshRun("qxub-bash", "cat $HOME/project/tools/keep.txt; ls $HOME/project/tools")
        #expect(left.stdoutText == "precious\nkeep.txt\n", "the user's files stay: \(left.stdoutText)")
    }

    @Test("a login file that prints a banner: the job still runs, and qxub says what printed it")
    func banner() throws {
        let remote = try remote("banner")
        #expect(try remote.qxub(["agent", "install", "--platform", "tcshbox"]).exit == .exited(0))
        _ = try remote.sshRun(
            "qxub-tcsh",
            "sh -c 'echo \"echo Welcome to the cluster; echo module loaded\" > $HOME/.cshrc'"
        )
        let run = try remote.qxub(["exec", "--platform", "tcshbox", "--backend", "local", "--", "echo job output"])
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        #expect(run.stdoutText == "job output\n", "the banner never reaches stdout")
        #expect(run.stderrText.contains("Welcome to the cluster"))
        #expect(run.stderrText.contains(".cshrc"))
    }

    @Test(
        "an agent of an older or newer protocol is refused with the command that fixes it",
        arguments: [(0, "older agent"), (9, "newer agent")]
    )
    func protocolMismatch(version: UInt32, expected: String) throws {
        let remote = try remote("version-\(version)")
        #expect(try remote.qxub(["agent", "install", "--platform", "bashbox"]).exit == .exited(0))
        // A stand-in agent that says hello with another protocol range, installed as version 99.0.0.
        var fake = ProtocolEndpoint(
            hello: Hello(versions: version...version, software: "qxub-agent 99.0.0"),
            preambleLimit: 0
        )
        let escaped = fake.start().map { "\\" + String($0, radix: 8) }.joined()
        let agent = "#!/bin/sh\nprintf '\(escaped)'\ncat >/dev/null\n"
        let directory = "$HOME/.qxub/agent/99.0.0"
        _ = try remote.sshRun(
            "qxub-bash",
            "mkdir -p \(directory) && cp $HOME/.qxub/agent/\(QxubVersion.current)/platform \(directory)/ && echo '1 1' > \(directory)/protocol"
        )
        let write = try runCollectingOutput(
            [
                "ssh", "-F", remote.ssh["QXUB_TEST_SSH_CONFIG"]!, "qxub-bash",
                "cat > \(directory)/qxub-agent && chmod 755 \(directory)/qxub-agent",
            ],
            stdinBytes: Array(agent.utf8)
        )
        #expect(write.exit == .exited(0), "\(write.stderrText)")
        let run = try remote.qxub(["exec", "--platform", "bashbox", "--backend", "local", "--", "true"])
        #expect(run.exit == .exited(69), "\(run.stderrText)")
        #expect(run.stderrText.contains(expected), "\(run.stderrText)")
        #expect(run.stderrText.contains(version == 0 ? "qxub agent install --platform bashbox" : "upgrade qxub"))
    }

    @Test(
        "the connection killed mid-stream (ssh, then the agent): qxub reconnects and the output is whole, nothing twice",
        arguments: ["ssh", "agent"]
    )
    func reconnect(victim: String) throws {
        let remote = try remote("reconnect-" + victim)
        #expect(try remote.qxub(["agent", "install", "--platform", "bashbox"]).exit == .exited(0))
        let child = try remote.sandbox.start([
            "exec", "--platform", "bashbox", "--backend", "local", "--",
            "for i in $(seq 1 40); do echo line $i; sleep 0.1; done; echo done >&2",
        ])
        // Cut the session once output flows: its first lines have reached qxub's stdout (the job prints 40
        // lines over 4 s, so the cut comes mid-stream).
        let head = readLines(child.stdout!, count: 3, timeout: 60)
        #expect(head == "line 1\nline 2\nline 3\n")
        if victim == "ssh" {
            for pid in remote.sessionProcesses() { kill(pid, SIGKILL) }
        } else {
            _ = try remote.sshRun("qxub-bash", "pkill -KILL -u \(remote.bashUser) -f 'qxub-agent serve'")
        }
        let run = collect(child, timeout: 120)
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        let expected = (1...40).map { "line \($0)\n" }.joined()
        #expect(head + run.stdoutText == expected)
        // What happened, not "the agent closed the session": ssh killed here, or ssh's lost connection.
        let reason =
            victim == "ssh"
            ? "ssh, which carried the session, was killed by signal 9"
            : "ssh lost the connection to bashbox with exit status 255: its ssh master or the network went away, or the agent was killed"
        #expect(
            run.stderrText.contains("qxub: connection lost (\(reason)); reconnecting (attempt 1)…"),
            "\(run.stderrText)"
        )
        #expect(run.stderrText.contains("done\n"))
    }

    @Test(
        "a lost connection is tried five times, each attempt said, then qxub gives up with 255 and says how to attach"
    )
    func reconnectSchedule() throws {
        let remote = try remote("reconnect-schedule")
        #expect(try remote.qxub(["agent", "install", "--platform", "bashbox"]).exit == .exited(0))
        // Once the flag exists, every new ssh session fails at once (as with a network that stays down); the
        // master is left alone.
        let flag = remote.sandbox.directory + "/network-down"
        try FileSystem.writeAtomically(
            remote.sandbox.directory + "/bin/ssh",
            """
            #!/bin/sh
            case "$*" in *qxub-shim*) [ -e \(flag) ] && { echo 'ssh: connect: Network is unreachable' >&2; exit 1; } ;; esac
            exec /usr/bin/ssh "$@"

            """,
            mode: 0o755
        )
        let child = try remote.sandbox.start([
            "exec", "--platform", "bashbox", "--backend", "local", "--", "echo first; sleep 120",
        ])
        #expect(readLines(child.stdout!, count: 1, timeout: 60) == "first\n")
        try FileSystem.writeAtomically(flag, "")
        let cut = MonotonicClock.now()
        for pid in remote.sessionProcesses() { kill(pid, SIGKILL) }
        let run = collect(child, timeout: 120)
        let elapsed = MonotonicClock.now() - cut
        _ = try remote.sshRun("qxub-bash", "pkill -u \(remote.bashUser) -f 'sleep 120' || true")
        #expect(run.exit == .exited(255), "\(run.stderrText)")
        // The schedule itself (1, 2, 4, 8 and 15 s) is checked on a manual clock (JobSessionDriverClockTests);
        // here, what the user sees: each attempt said once, in order, each failed attempt's ssh message, and
        // the way back to the job.
        let down =
            "bashbox closed the connection before the agent said hello: qxub-agent is probably not installed there (see the message above)"
        let gaveUp = "qxub: lost the connection to bashbox (\(down)); job "
        let last = run.stderrText.split(separator: "\n").last.map(String.init) ?? ""
        let jobID = try #require(
            last.hasPrefix(gaveUp) ? last.dropFirst(gaveUp.count).split(separator: " ").first.map(String.init) : nil,
            "\(run.stderrText)"
        )
        let expected =
            "qxub: connection lost (ssh, which carried the session, was killed by signal 9); reconnecting (attempt 1)…\n"
            + (2...5).map {
                "ssh: connect: Network is unreachable\nqxub: connection lost (\(down)); reconnecting (attempt \($0))…\n"
            }.joined()
            + "ssh: connect: Network is unreachable\n"
            + gaveUp + "\(jobID) is still running: "
            + "`qxub attach \(jobID) --platform bashbox` follows it\n"
        #expect(run.stderrText == expected)
        // A lower bound only, and it is behaviour: qxub did not give up before its 1 + 2 + 4 + 8 + 15 s of
        // pauses. (How much longer it took is the machine's business, not the test's.)
        #expect(elapsed >= 30, "gave up after \(elapsed) s")
    }

    @Test("batch: the connection killed mid-stream, qxub reconnects and every job's output is whole, nothing twice")
    func batchReconnect() throws {
        let remote = try remote("batch-reconnect")
        #expect(try remote.qxub(["agent", "install", "--platform", "bashbox"]).exit == .exited(0))
        let jobs = (1...3).map { job in
            "for i in $(seq 1 25); do echo job \(job) line $i; sleep 0.1; done" + (job == 2 ? "; exit 5" : "")
        }
        try FileSystem.writeAtomically(remote.sandbox.directory + "/jobs.txt", jobs.joined(separator: "\n") + "\n")
        let child = try remote.sandbox.start([
            "batch", "--platform", "bashbox", "--backend", "local", remote.sandbox.directory + "/jobs.txt",
        ])
        // Cut the session once every job's output flows (each prints 25 lines over 2.5 s: mid-stream).
        let head = readLines(child.stdout!, timeout: 60) { text in
            (1...3).allSatisfy { text.contains("[\($0)] job \($0) line 1\n") }
        }
        #expect((1...3).allSatisfy { head.contains("[\($0)] job \($0) line 1\n") }, "\(head)")
        for pid in remote.sessionProcesses() { kill(pid, SIGKILL) }
        let run = collect(child, timeout: 120)
        #expect(run.exit == .exited(1), "one job failed: \(run.stderrText)")
        #expect(run.stderrText.contains("reconnecting") && run.stderrText.contains("reconnected"), "\(run.stderrText)")
        let stdout = head + run.stdoutText
        for job in 1...3 {
            let lines = stdout.split(separator: "\n").filter { $0.hasPrefix("[\(job)] ") }.map(String.init)
            #expect(
                lines == (1...25).map { "[\(job)] job \(job) line \($0)" },
                "job \(job), every line once and in order: \(lines)"
            )
        }
        #expect(run.stderrText.contains("3 jobs, 2 succeeded, 1 failed"), "\(run.stderrText)")
    }

    @Test("Ctrl-C while the connection is down: the cancel is sent once qxub reconnects, and the job ends")
    func interruptWhileReconnecting() throws {
        let remote = try remote("interrupt-reconnect")
        #expect(try remote.qxub(["agent", "install", "--platform", "bashbox"]).exit == .exited(0))
        let child = try remote.sandbox.start([
            "exec", "--platform", "bashbox", "--backend", "local", "--", "echo started; sleep 131",
        ])
        // Wait for the job to run, cut the session, and press Ctrl-C before qxub has reconnected (1 s).
        #expect(
            remote.sandbox.wait(timeout: 30) {
                !(try? remote.sshRun("qxub-bash", "pgrep -u \(remote.bashUser) -f '[s]leep 131' || true"))!.stdoutText
                    .isEmpty
            }
        )
        for pid in remote.sessionProcesses() { kill(pid, SIGKILL) }
        // qxub has seen the connection go: it says so, then waits 1 s before its first attempt.
        let notice = readUntil(child.stderr!, containing: "reconnecting (attempt 1)", timeout: 30)
        #expect(notice.contains("reconnecting (attempt 1)"), "\(notice)")
        kill(-child.pid, SIGINT)
        let run = collect(child, timeout: 90)
        #expect(run.exit == .exited(130), "\(notice)\(run.stderrText)")
        let left = try remote.sshRun("qxub-bash", "pgrep -u \(remote.bashUser) -f '[s]leep 131' || true")
        #expect(left.stdoutText.isEmpty, "the job was cancelled on the cluster")
    }

    @Test("the connection lost between submit and its answer: qxub asks again and gets the same job, submitted once")
    func connectionLostDuringSubmission() throws {
        let remote = try remote("lost-submit")
        let slurm = try Components.slurm()
        #expect(try remote.qxub(["agent", "install", "--platform", "bashbox"]).exit == .exited(0))
        // A slow sbatch (as on a busy cluster): the session is cut while it runs.
        _ = try remote.sshRun(
            "qxub-bash",
            "mkdir -p $HOME/slow && printf '%s\\n' '#!/bin/sh' 'sleep 2' 'exec /usr/bin/sbatch \"$@\"' > $HOME/slow/sbatch && chmod 755 $HOME/slow/sbatch && echo 'export SLURM_CONF=\(slurm["SLURM_CONF"]!); export PATH=$HOME/slow:/usr/bin:/bin' > $HOME/.bashrc"
        )
        let marker = "lost-submit-\(getpid())"
        let child = try remote.sandbox.start([
            "exec", "--terse", "--platform", "bashbox", "--backend", "slurm", "-N", marker, "--", "true",
        ])
        // Cut the session once sbatch runs (the submission has gone out, its answer has not come back).
        #expect(
            remote.sandbox.wait(timeout: 30) {
                !(try? remote.sshRun("qxub-bash", "pgrep -u \(remote.bashUser) -x -f 'sleep 2' || true"))!.stdoutText
                    .isEmpty
            }
        )
        for pid in remote.sessionProcesses() { kill(pid, SIGKILL) }
        let run = collect(child, timeout: 120)
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        let log = FileSystem.readText(remote.sandbox.directory + "/home/.local/state/qxub/qxub.log") ?? ""
        #expect(log.contains("submission: connection lost before the answer"), "qxub retried the submission: \(log)")
        // --terse prints the job id alone; the resubmission is in the log, and never called a resumed output.
        #expect(!run.stderrText.contains("resuming the output"), "no output is resumed: \(run.stderrText)")
        let id = run.stdoutText.trimmingWhitespaceForTests()
        let count = try remote.sshRun("qxub-bash", "scontrol show job 2>/dev/null | grep -c 'JobName=\(marker)'")
        #expect(
            count.stdoutText.trimmingWhitespaceForTests() == "1",
            "exactly one job named \(marker) in Slurm: \(count.stdoutText)"
        )
        let job = try remote.sshRun("qxub-bash", "scontrol show job \(id)")
        #expect(job.stdoutText.contains("JobName=\(marker)"), "qxub printed that job's id (\(id)): \(job.stdoutText)")
    }

    @Test("a dead ControlMaster socket is cleared, not hung on")
    func deadMaster() throws {
        let remote = try remote("deadmaster")
        #expect(try remote.qxub(["agent", "install", "--platform", "bashbox"]).exit == .exited(0))
        // Kill the master hard: its socket file stays behind with nobody listening.
        let masters = try runCollectingOutput([
            "pgrep", "-f", "ControlPath=" + remote.sandbox.directory + "/cm/bashbox",
        ])
        let pids = masters.stdoutText.split(separator: "\n").compactMap { pid_t($0) }
        #expect(!pids.isEmpty, "the master runs")
        for pid in pids { kill(pid, SIGKILL) }
        #expect(remote.sandbox.wait(timeout: 10) { pids.allSatisfy(processEnded) }, "the master is gone")
        #expect(FileSystem.exists(remote.sandbox.directory + "/cm/bashbox"), "the stale socket should still be there")
        let run = try remote.qxub(
            ["exec", "--platform", "bashbox", "--backend", "local", "--", "echo after the master died"],
            timeout: 60
        )
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        #expect(run.stdoutText == "after the master died\n")
    }

    @Test(
        "a master whose connection hangs (its socket still answers, as after a laptop slept) is replaced, not hung on"
    )
    func hungMaster() throws {
        // The direct path's recovery (the holder's is in SessionHolderTests): no holder in between.
        let remote = try remote("hungmaster", sessionPersist: "0")
        remote.sandbox.environment["QXUB_HELLO_TIMEOUT"] = "3"
        #expect(try remote.qxub(["agent", "install", "--platform", "bashbox"]).exit == .exited(0))
        let terse = try remote.qxub([
            "exec", "--terse", "--platform", "bashbox", "--backend", "local", "--", "echo kept",
        ])
        let id = terse.stdoutText.trimmingWhitespaceForTests()
        #expect(terse.exit == .exited(0), "\(terse.stderrText)")
        /// Stops the master process: its socket still accepts connections, but no session through it starts.
        var frozen: Set<pid_t> = []
        func freezeMaster() throws {
            let candidates = try runCollectingOutput([
                "pgrep", "-f", "ControlPath=" + remote.sandbox.directory + "/cm/bashbox",
            ])
            let masters = candidates.stdoutText.split(separator: "\n").compactMap { pid_t($0) }.filter { pid in
                !frozen.contains(pid)
                    && (FileSystem.readText("/proc/\(pid)/cmdline") ?? "").split(separator: "\0").contains("-N")
            }
            #expect(masters.count == 1, "one live master for the platform: \(masters)")
            for pid in masters {
                frozen.insert(pid)
                kill(pid, SIGSTOP)
                remote.sandbox.cleanup.append(["kill", "-KILL", "\(pid)"])
            }
        }
        try freezeMaster()
        let started = MonotonicClock.now()
        let run = try remote.qxub(
            ["exec", "--platform", "bashbox", "--backend", "local", "--", "echo after the master hung"],
            timeout: 90
        )
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        #expect(run.stdoutText == "after the master hung\n")
        #expect(run.stderrText.contains("no answer from bashbox in 3 s"), "\(run.stderrText)")
        #expect(MonotonicClock.now() - started < 40, "the hang is noticed within the hello timeout, not after minutes")
        // The request commands recover the same way.
        try freezeMaster()
        let status = try remote.qxub(["status", id, "--platform", "bashbox", "--format", "json"], timeout: 90)
        #expect(status.exit == .exited(0), "\(status.stderrText)")
        #expect(status.stdoutText.contains(id) && status.stdoutText.contains("finished"), "\(status.stdoutText)")
        // And the agent commands (which may upload for minutes) probe first.
        try freezeMaster()
        let agents = try remote.qxub(["agent", "status", "--platform", "bashbox"], timeout: 90)
        #expect(
            agents.exit == .exited(0) && agents.stdoutText.contains(QxubVersion.current),
            "\(agents.stdoutText) \(agents.stderrText)"
        )
    }

    @Test(
        "a discarded hung master is ended by qxub (SIGTERM, then SIGKILL as it is stopped); the new master's socket survives"
    )
    func discardedMasterEnded() throws {
        let remote = try remote("discard")
        remote.sandbox.environment["QXUB_HELLO_TIMEOUT"] = "3"
        #expect(try remote.qxub(["agent", "install", "--platform", "bashbox"]).exit == .exited(0))
        let socket = remote.sandbox.directory + "/cm/bashbox"
        /// The ssh masters of this sandbox (`-N`), live or stopped, not zombies.
        func masters() throws -> [pid_t] {
            let candidates = try runCollectingOutput(["pgrep", "-f", "ControlPath=" + socket])
            return candidates.stdoutText.split(separator: "\n").compactMap { pid_t($0) }.filter { pid in
                (FileSystem.readText("/proc/\(pid)/cmdline") ?? "").split(separator: "\0").contains("-N")
                    && !processEnded(pid)
            }
        }
        let old = try masters()
        try #require(old.count == 1, "one master after install: \(old)")
        kill(old[0], SIGSTOP)
        remote.sandbox.cleanup.append(["kill", "-KILL", "\(old[0])"])
        let run = try remote.qxub(
            ["exec", "--platform", "bashbox", "--backend", "local", "--", "echo after the master hung"],
            timeout: 90
        )
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        #expect(run.stdoutText == "after the master hung\n")
        #expect(remote.sandbox.wait(timeout: 10) { processEnded(old[0]) }, "qxub ended the master it discarded")
        let log = FileSystem.readText(remote.sandbox.directory + "/home/.local/state/qxub/qxub.log") ?? ""
        #expect(log.contains("pid \(old[0]) ended by signal \(SIGKILL)"), "a stopped master needs SIGKILL: \(log)")
        let new = try masters()
        #expect(new.count == 1 && new != old, "one new master: \(new)")
        // Had the old master survived, its exit would unlink the path it was given: let it exit now.
        if !processEnded(old[0]) {
            kill(old[0], SIGTERM)
            kill(old[0], SIGCONT)
            _ = remote.sandbox.wait(timeout: 10) { processEnded(old[0]) }
        }
        #expect(SocketProbe.isSocket(socket), "the new master's socket is still there")
        let after = try remote.qxub(
            ["exec", "--platform", "bashbox", "--backend", "local", "--", "echo once more"],
            timeout: 60
        )
        #expect(after.stdoutText == "once more\n", "\(after.stderrText)")
        #expect(try masters() == new, "the new master served it: no third master")
    }

    /// The ssh masters (`-N`) whose command line contains `marker` (a control path, a config file).
    func masters(containing marker: String) -> [pid_t] {
        let candidates = (try? runCollectingOutput(["pgrep", "-f", marker]))?.stdoutText ?? ""
        return candidates.split(separator: "\n").compactMap { pid_t($0) }.filter { pid in
            (FileSystem.readText("/proc/\(pid)/cmdline") ?? "").split(separator: "\0").contains("-N")
        }
    }

    /// Follows a job whose ssh master is stopped (SIGSTOP) after its first line: qxub must say the connection
    /// went silent within `bound` seconds of the stop; returns the whole run (stdout and stderr from the start).
    func followThroughFrozenMaster(
        _ remote: Remote,
        platform: String,
        master marker: String,
        bound: Double
    ) throws -> (run: CollectedRun, frozen: [pid_t], noticed: Double) {
        let job = "for i in $(seq 1 40); do echo line $i; sleep 0.1; done; echo done >&2; exit 3"
        let child = try remote.sandbox.start(["exec", "--platform", platform, "--backend", "local", "--", job])
        let first = readLines(child.stdout!, count: 1, timeout: 60)
        let frozen = masters(containing: marker)
        #expect(frozen.count == 1, "one master for the platform: \(frozen)")
        for pid in frozen {
            kill(pid, SIGSTOP)
            // First: an `ssh -O exit` through a stopped master would wait for its time limit.
            remote.sandbox.cleanup.insert(["kill", "-KILL", "\(pid)"], at: 0)
        }
        let stopped = MonotonicClock.now()
        let early = readUntil(child.stderr!, containing: "the connection went silent", timeout: bound + 5)
        let noticed = MonotonicClock.now() - stopped
        // Not noticed in time: stop qxub rather than wait minutes for the test's own timeout.
        if !early.contains("the connection went silent") { kill(-child.pid, SIGKILL) }
        let rest = collect(child, timeout: 120)
        let run = CollectedRun(
            exit: rest.exit,
            stdout: Array(first.utf8) + rest.stdout,
            stderr: Array(early.utf8) + rest.stderr
        )
        return (run, frozen, noticed)
    }

    @Test("a master hung mid-job (SIGSTOP): in the documented 40 s qxub says it went silent, replaces it, output whole")
    func silentMasterMidJob() throws {
        let remote = try remote("silent-master")
        #expect(try remote.qxub(["agent", "install", "--platform", "bashbox"]).exit == .exited(0))
        let socket = remote.sandbox.directory + "/cm/bashbox"
        // The documented bound: a ping every 10 s, silence past 30 s noticed at the next tick.
        let (run, frozen, noticed) = try followThroughFrozenMaster(
            remote,
            platform: "bashbox",
            master: "ControlPath=" + socket,
            bound: 40
        )
        #expect(noticed <= 41, "the silence is noticed within 30-40 s of the stop, not after \(noticed) s")
        #expect(run.exit == .exited(3), "\(run.stderrText)")
        #expect(run.stdoutText == (1...40).map { "line \($0)\n" }.joined())
        #expect(
            run.stderrText.contains(
                "qxub: connection lost (nothing heard from bashbox for 30 s: the connection went silent); reconnecting (attempt 1)…"
            ),
            "\(run.stderrText)"
        )
        #expect(
            run.stderrText.contains(
                "qxub: warning: the ssh master of bashbox no longer answers: discarded; a new one is opened"
            ),
            "\(run.stderrText)"
        )
        #expect(run.stderrText.contains("qxub: reconnected; resuming the output where it stopped"), "\(run.stderrText)")
        #expect(run.stderrText.contains("done\n"))
        let fresh = masters(containing: "ControlPath=" + socket).filter { !frozen.contains($0) }
        #expect(fresh.count == 1, "the session went on through a new master: \(fresh)")
    }

    @Test("a hung master of the user's ssh config is left alone: the session goes on with ControlPath=none, saying so")
    func silentUserMasterMidJob() throws {
        let remote = try remote("silent-usermaster")
        let sandbox = remote.sandbox
        #expect(try remote.qxub(["agent", "install", "--platform", "bashbox"]).exit == .exited(0))
        // The user's ssh config shares connections itself: qxub uses its master and never kills it.
        let userConfig = sandbox.directory + "/user_ssh_config"
        try FileSystem.writeAtomically(
            userConfig,
            """
            Host qxub-bash
              ControlMaster auto
              ControlPath \(sandbox.directory)/um-%r
              ControlPersist 300
            Include \(remote.ssh["QXUB_TEST_SSH_CONFIG"]!)

            """
        )
        try FileSystem.writeAtomically(
            sandbox.directory + "/config/qxub/config.yaml",
            """
            platforms:
              usercm:
                remote:
                  host: qxub-bash
                  ssh_config: \(userConfig)

            """
        )
        sandbox.cleanup.append(["ssh", "-F", userConfig, "-O", "exit", "qxub-bash"])
        // A smaller ping interval (the silence limit is three of them), so this case takes seconds.
        sandbox.environment["QXUB_HEARTBEAT_INTERVAL"] = "1"
        let (run, frozen, noticed) = try followThroughFrozenMaster(
            remote,
            platform: "usercm",
            master: userConfig,
            bound: 4
        )
        #expect(noticed <= 5, "silence of 3 s noticed at the next 1 s tick, not after \(noticed) s")
        #expect(run.exit == .exited(3), "\(run.stderrText)")
        #expect(run.stdoutText == (1...40).map { "line \($0)\n" }.joined())
        #expect(
            run.stderrText.contains(
                "qxub: connection lost (nothing heard from usercm for 3 s: the connection went silent); reconnecting (attempt 1)…"
            ),
            "\(run.stderrText)"
        )
        #expect(
            run.stderrText.contains(
                "qxub: warning: the ssh master of your ssh config for qxub-bash no longer answers: qxub leaves it running "
                    + "and connects without it (ControlPath=none) for the rest of this session"
            ),
            "\(run.stderrText)"
        )
        #expect(run.stderrText.contains("qxub: reconnected; resuming the output where it stopped"), "\(run.stderrText)")
        for pid in frozen {
            let stat = FileSystem.readText("/proc/\(pid)/stat") ?? ""
            #expect(stat.contains(") T "), "the user's master \(pid) is still there, stopped, not killed: \(stat)")
        }
        let log = FileSystem.readText(sandbox.directory + "/home/.local/state/qxub/qxub.log") ?? ""
        #expect(log.contains("-o ControlPath=none"), "the new session bypassed the user's master: \(log)")
    }

    @Test("a login slower than QXUB_HELLO_TIMEOUT: the message names the setting and how to raise it")
    func slowLogin() throws {
        let remote = try remote("slow-login")
        #expect(try remote.qxub(["agent", "install", "--platform", "bashbox"]).exit == .exited(0))
        _ = try remote.sshRun("qxub-bash", "echo 'sleep 4' > $HOME/.bashrc")
        remote.sandbox.environment["QXUB_HELLO_TIMEOUT"] = "1"
        let run = try remote.qxub(["exec", "--platform", "bashbox", "--backend", "local", "--", "true"], timeout: 60)
        #expect(run.exit == .exited(255), "\(run.stderrText)")
        #expect(
            run.stderrText.contains(
                "qxub: error: no answer from bashbox in 1 s (QXUB_HELLO_TIMEOUT): the ssh connection is probably dead, or the "
                    + "login is slower than that\n  hint: check that `ssh HOST true` works; `qxub doctor --platform bashbox` shows "
                    + "where it stops; a slow login or agent start needs more time: set QXUB_HELLO_TIMEOUT=SECONDS (the default is 20)\n"
            ),
            "\(run.stderrText)"
        )
    }

    @Test("attach follows a job submitted earlier, from its first byte")
    func attach() throws {
        let remote = try remote("attach")
        #expect(try remote.qxub(["agent", "install", "--platform", "bashbox"]).exit == .exited(0))
        let terse = try remote.qxub([
            "exec", "--terse", "--platform", "bashbox", "--backend", "local", "--",
            "echo first; sleep 1; echo second; exit 3",
        ])
        let id = terse.stdoutText.trimmingWhitespaceForTests()
        #expect(terse.exit == .exited(0) && id.hasPrefix("local-"), "\(terse.stderrText)")
        let run = try remote.qxub(["attach", id, "--platform", "bashbox"])
        #expect(run.exit == .exited(3), "\(run.stderrText)")
        #expect(run.stdoutText == "first\nsecond\n")
        let unknown = try remote.qxub(["attach", "local-nosuch", "--platform", "bashbox"])
        #expect(unknown.exit == .exited(69))
        #expect(unknown.stderrText.contains("no job local-nosuch"))
    }

    @Test("a remote job's id needs no --platform: status, monitor, attach, cancel and history out ask its platform")
    func idsResolvedThroughHistory() throws {
        let remote = try remote("history-ids")
        #expect(try remote.qxub(["agent", "install", "--platform", "bashbox"]).exit == .exited(0))
        let terse = try remote.qxub([
            "exec", "--terse", "--platform", "bashbox", "--backend", "local", "--", "echo first; exit 3",
        ])
        let id = terse.stdoutText.trimmingWhitespaceForTests()
        #expect(terse.exit == .exited(0) && id.hasPrefix("local-"), "\(terse.stderrText)")
        let monitor = try remote.qxub(["monitor", "-i", "0.5", id])
        #expect(monitor.exit == .exited(1), "\(monitor.stderrText)")
        #expect(
            monitor.stdoutText == "\(id): FAILED, exit status 3\nall jobs finished: 0 succeeded, 1 failed\n",
            "\(monitor.stdoutText) \(monitor.stderrText)"
        )
        let snakemake = try remote.qxub(["status", "--format", "snakemake", id])
        #expect(snakemake.stdoutText == "failed\n", "\(snakemake.stderrText)")
        let attach = try remote.qxub(["attach", id])
        #expect(attach.exit == .exited(3) && attach.stdoutText == "first\n", "\(attach.stderrText)")
        #expect(try remote.qxub(["history", "out", id]).stdoutText == "first\n")
        // history out takes --platform too, which wins (and reaches a job that this history lacks).
        #expect(try remote.qxub(["history", "out", "--platform", "bashbox", id]).stdoutText == "first\n")
        let elsewhere = try remote.qxub(["history", "out", "--platform", "local", id])
        #expect(
            elsewhere.exit == .exited(69) && elsewhere.stderrText.contains("no job \(id)"),
            "\(elsewhere.stderrText)"
        )
        // Jobs of two platforms in one call: one session each, answers in the order asked.
        let slow = try remote.qxub([
            "exec", "--terse", "--platform", "bashbox", "--backend", "local", "--", "sleep 300",
        ]).stdoutText.trimmingWhitespaceForTests()
        let here = try remote.qxub(["exec", "--terse", "--backend", "local", "--", "sleep 300"]).stdoutText
            .trimmingWhitespaceForTests()
        let both = try remote.qxub(["status", "--format", "snakemake", slow, here, id])
        #expect(both.stdoutText == "running\nrunning\nfailed\n", "\(both.stderrText)")
        let cancel = try remote.qxub(["cancel", slow, here])
        #expect(cancel.exit == .exited(0), "\(cancel.stderrText)")
        #expect(
            Set(cancel.stdoutText.split(separator: "\n")) == [
                "\(slow): cancel requested", "\(here): cancel requested",
            ],
            "\(cancel.stdoutText)"
        )
        // An explicit --platform still wins: this machine's agent does not know the remote job.
        let local = try remote.qxub(["status", "--platform", "local", id])
        #expect(local.stderrText == "qxub: \(id): unknown job: the agent on local does not know it\n")
    }

    @Test("100 jobs over one session against the real Slurm: one ssh session, every job's output tagged, a summary")
    func hundredJobsOneSession() throws {
        // Counts the sessions the batch opens itself: the holder a first qxub starts would add its own.
        let remote = try remote("batch", sessionPersist: "0")
        let slurm = try Components.slurm()
        #expect(try remote.qxub(["agent", "install", "--platform", "bashbox"]).exit == .exited(0))
        // The cluster's login file sets up the scheduler's client, as sites do.
        _ = try remote.sshRun("qxub-bash", "echo 'export SLURM_CONF=\(slurm["SLURM_CONF"]!)' > $HOME/.bashrc")
        let commands = (1...100).map { "echo job \($0) on $(hostname)" + ($0 == 42 ? "; exit 9" : "") }.joined(
            separator: "\n"
        )
        try FileSystem.writeAtomically(remote.sandbox.directory + "/jobs.txt", commands + "\n")
        // Count the agent sessions qxub opens: an ssh wrapper first on PATH logs every invocation.
        let log = remote.sandbox.directory + "/ssh-calls.log"
        try FileSystem.writeAtomically(
            remote.sandbox.directory + "/bin/ssh",
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> \(log)\nexec /usr/bin/ssh \"$@\"\n",
            mode: 0o755
        )
        func sessions() -> Int {
            (FileSystem.readText(log) ?? "").split(separator: "\n").filter { $0.contains("qxub-shim") }.count
        }
        let before = sessions()
        let run = try remote.qxub(
            ["batch", "--platform", "bashbox", "--backend", "slurm", remote.sandbox.directory + "/jobs.txt"],
            timeout: 600
        )
        #expect(run.exit == .exited(1), "one job failed: \(run.stderrText)")
        #expect(sessions() - before == 1, "all 100 jobs went over one ssh session")
        let lines = run.stdoutText.split(separator: "\n")
        #expect(lines.count == 100)
        for index in 1...100 {
            #expect(lines.contains { $0.hasPrefix("[\(index)] job \(index) on ") }, "job \(index)")
        }
        #expect(run.stderrText.contains("100 jobs, 99 succeeded, 1 failed"))
        #expect(run.stderrText.contains("[42] "))
    }

    @Test("doctor measures the master, the login shell, the agent and reports login-file noise")
    func doctor() throws {
        let remote = try remote("doctor")
        // No agent yet: what doctor could measure, then what is wrong and the command that fixes it.
        let missing = try remote.qxub(["doctor", "--platform", "tcshbox"])
        #expect(missing.exit == .exited(69), "\(missing.stderrText)")
        #expect(
            missing.stdoutText.contains("master connection") && missing.stdoutText.contains("agent directory"),
            "\(missing.stdoutText)"
        )
        #expect(
            missing.stdoutText.contains("NOT REACHABLE")
                && missing.stdoutText.contains("qxub agent install --platform tcshbox"),
            "\(missing.stdoutText)"
        )
        #expect(try remote.qxub(["agent", "install", "--platform", "tcshbox"]).exit == .exited(0))
        // A login file that talks, and takes 0.3 s: every session, and every `ssh host true`, pays it.
        _ = try remote.sshRun("qxub-tcsh", "sh -c 'printf \"echo Welcome\\nsleep 0.3\\n\" > $HOME/.cshrc'")
        let began = MonotonicClock.now()
        let run = try remote.qxub(["doctor", "--platform", "tcshbox"])
        let wall = (MonotonicClock.now() - began) * 1000
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        for expected in [
            "master connection", "ssh host true", "agent round trip", "qxub-agent \(QxubVersion.current)", "PRINTED",
            "Welcome", "programs run there", " free",
        ] {
            #expect(run.stdoutText.contains(expected), "missing \(expected) in \(run.stdoutText)")
        }
        // The session start runs from spawning ssh to the agent's hello, so it holds the login shell's
        // 0.3 s as `ssh host true` does (bounds the login file guarantees, not thresholds on speed), and
        // it fits inside the doctor's own run.
        let sessionStart = try #require(doctorFigure(run.stdoutText, "session start"), "\(run.stdoutText)")
        let sshTrue = try #require(doctorFigure(run.stdoutText, "ssh host true"), "\(run.stdoutText)")
        #expect(sshTrue >= 300, "\(run.stdoutText)")
        #expect(sessionStart >= 300, "the session start must include the login shell: \(run.stdoutText)")
        #expect(sessionStart <= wall, "\(run.stdoutText)")
    }

    /// The milliseconds on a `qxub doctor` line (`session start         312 ms (…)`).
    func doctorFigure(_ output: String, _ label: String) -> Double? {
        let line = output.split(separator: "\n").first { $0.hasPrefix(label + " ") }
        let words = line?.dropFirst(label.count).split(separator: " ")
        guard let words, words.count >= 2, words[1] == "ms" else { return nil }
        return Double(words[0])
    }

    @Test("an unknown platform is a usage error naming the configured ones")
    func unknownPlatform() throws {
        let remote = try remote("unknown")
        let run = try remote.qxub(["exec", "--platform", "nosuch", "--", "true"])
        #expect(run.exit == .exited(64))
        #expect(run.stderrText.contains("bashbox, tcshbox"))
    }
}
