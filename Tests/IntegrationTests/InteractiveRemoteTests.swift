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
            try InteractiveShellScenario(resize: (33, 101)).run(session, modeBefore: before)
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
