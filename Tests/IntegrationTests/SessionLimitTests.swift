import QxubProtocol
import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Many qxub at once against sshd's own limits (MaxSessions, MaxStartups), and the one master connection
/// they share. Each sshd here has its own users and homes (Tests/Support/sshd.sh), so these tests do not
/// disturb RemoteTests on the shared sshd.
@Suite("Many qxub at once: sshd's session limits, one master per platform", .serialized)
struct SessionLimitTests {
    /// A laptop with platform `limited` on `instance`'s bash host, and a clean home there.
    func laptop(_ label: String, _ instance: Components.SSHD) throws -> (Sandbox, [String: String]) {
        let ssh = try Components.sshd(instance)
        let sandbox = try Sandbox("limits-" + label)
        let config = ssh["QXUB_TEST_SSH_CONFIG"]!
        try sandbox.configureRemote(
            [.init(name: "limited", host: "qxub-bash", workingDirectory: ssh["QXUB_TEST_SSH_BASH_HOME"]! + "/work")],
            ssh: ssh
        )
        if instance != .refusingSessions {
            let clean = try runCollectingOutput(
                [
                    "ssh", "-F", config, "qxub-bash",
                    "pkill -u $(id -u) -f '[q]xub-agent serve'; rm -rf $HOME/.qxub $HOME/work; mkdir -p $HOME/work",
                ],
                timeout: 60
            )
            #expect(clean.exit == .exited(0) || clean.exit == .exited(1), "\(clean.stderrText)")
        }
        return (sandbox, ssh)
    }

    /// The live ssh master processes of `sandbox`'s platform (`ssh … -N` with its control path).
    func masters(_ sandbox: Sandbox) -> [pid_t] {
        let candidates = (try? runCollectingOutput(["pgrep", "-x", "ssh"]))?.stdoutText ?? ""
        return candidates.split(separator: "\n").compactMap { pid_t($0) }.filter { pid in
            let argv = (FileSystem.readText("/proc/\(pid)/cmdline") ?? "").split(separator: "\0")
            return argv.contains("-N") && argv.contains { $0 == "ControlPath=" + sandbox.directory + "/cm/limited" }
        }
    }

    @Test("60 `qxub exec` at once against sshd's default MaxSessions and MaxStartups: every one succeeds, one job each")
    func sixtyAtOnce() throws {
        let (sandbox, ssh) = try laptop("sixty", .defaultLimits)
        let install = try sandbox.qxub(["agent", "install", "--platform", "limited"])
        #expect(install.exit == .exited(0), "\(install.stderrText)")
        let count = 60
        // Each follows its job for a few seconds, so all 60 want a session at the same time (10 fit in the
        // master's connection); each job appends its id to a file of its own: one line per job that ran.
        let children = try (1...count).map { index in
            try sandbox.start([
                "exec", "--platform", "limited", "--backend", "local", "--",
                "echo $QXUB_JOB_ID >> $HOME/work/ran.\(index); sleep 3; echo job \(index)",
            ])
        }
        let runs = children.map { collect($0, timeout: 180) }
        for (offset, run) in runs.enumerated() {
            #expect(run.exit == .exited(0), "qxub \(offset + 1) of \(count): \(run.exit) \(run.stderrText)")
            #expect(run.stdoutText == "job \(offset + 1)\n")
        }
        let script = "for i in $(seq 1 \(count)); do echo $i $(cat $HOME/work/ran.$i 2>/dev/null); done"
        let listing = try runCollectingOutput(
            ["ssh", "-F", ssh["QXUB_TEST_SSH_CONFIG"]!, "qxub-bash", script],
            timeout: 30
        )
        for line in listing.stdoutText.split(separator: "\n") {
            let fields = line.split(separator: " ")
            #expect(fields.count == 2, "submission \(fields.first ?? "?") made exactly one job: \(line)")
        }
        #expect(listing.stdoutText.split(separator: "\n").count == count, "\(listing.stdoutText) \(listing.stderrText)")
    }

    @Test("an sshd that refuses every session: a few tries, then a message that names MaxSessions and MaxStartups")
    func retriesRunOut() throws {
        let (sandbox, _) = try laptop("refused", .refusingSessions)
        // Count the sessions qxub opens: an ssh wrapper first on PATH logs every invocation.
        let log = sandbox.directory + "/ssh-calls.log"
        try FileSystem.writeAtomically(
            sandbox.directory + "/bin/ssh",
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> \(log)\nexec /usr/bin/ssh \"$@\"\n",
            mode: 0o755
        )
        let run = try sandbox.qxub(["exec", "--platform", "limited", "--backend", "local", "--", "true"], timeout: 90)
        #expect(run.exit == .exited(69), "\(run.stderrText)")
        #expect(
            run.stderrText.contains("qxub: error: ssh could not open a session on limited (ssh exit 255, 5 tries in "),
            "\(run.stderrText)"
        )
        #expect(run.stderrText.contains("MaxSessions") && run.stderrText.contains("MaxStartups"), "\(run.stderrText)")
        #expect(!run.stderrText.contains("qxub agent install"), "no offer to install: \(run.stderrText)")
        let sessions = (FileSystem.readText(log) ?? "").split(separator: "\n").filter { $0.contains("qxub-shim") }.count
        #expect(sessions == 5, "five tries: \(FileSystem.readText(log) ?? "")")
        // Each try ended on sshd's refusal (ssh exit 255), none by waiting out the hello timeout: qxub never
        // took a refused session for a stalled one (whose message names QXUB_HELLO_TIMEOUT). The pauses
        // between the tries are SessionRetryPolicy's, checked without sshd in SessionRetryPolicyTests.
        #expect(!run.stderrText.contains("QXUB_HELLO_TIMEOUT"), "\(run.stderrText)")
        #expect(!run.stderrText.contains("no answer from"), "\(run.stderrText)")
    }

    @Test("several qxub at once with no master: one master is opened, the others wait for it saying so, every job runs")
    func oneMasterForMany() throws {
        let (sandbox, _) = try laptop("one-master", .defaultLimits)
        let install = try sandbox.qxub(["agent", "install", "--platform", "limited"])
        #expect(install.exit == .exited(0), "\(install.stderrText)")
        _ = try runCollectingOutput(sandbox.cleanup[0], environment: sandbox.environmentList, timeout: 30)
        #expect(sandbox.wait(timeout: 10) { masters(sandbox).isEmpty }, "the master is closed before the test")
        // A master that takes a second to log in (as one showing an MFA prompt would): every qxub starts
        // while it is being opened.
        try FileSystem.writeAtomically(
            sandbox.directory + "/bin/ssh",
            """
            #!/bin/sh
            for argument in "$@"; do [ "$argument" = -N ] && sleep 1; done
            exec /usr/bin/ssh "$@"

            """,
            mode: 0o755
        )
        let count = 8
        let children = try (1...count).map { index in
            try sandbox.start(["exec", "--platform", "limited", "--backend", "local", "--", "echo job \(index)"])
        }
        let runs = children.map { collect($0, timeout: 120) }
        for (offset, run) in runs.enumerated() {
            #expect(run.exit == .exited(0), "qxub \(offset + 1): \(run.stderrText)")
            #expect(run.stdoutText == "job \(offset + 1)\n", "\(run.stderrText)")
        }
        let found = masters(sandbox)
        for pid in found.dropFirst() { kill(pid, SIGTERM) }
        #expect(found.count == 1, "one ssh master for the platform: \(found)")
        let waiting = runs.filter {
            $0.stderrText.contains("waiting for the connection to qxub-bash (platform limited) that another qxub")
        }
        #expect(waiting.count == count - 1, "all but the opener waited and said so: \(runs.map(\.stderrText))")
        let opener = zip(children, runs).first { !$0.1.stderrText.contains("waiting for the connection") }?.0
        if let opener {
            #expect(
                waiting.allSatisfy { $0.stderrText.contains("(pid \(opener.pid))") },
                "the waiters name the opener's pid"
            )
        }
        let lines = runs.map {
            $0.stderrText.split(separator: "\n").filter { $0.contains("waiting for the connection") }.count
        }
        #expect(lines.allSatisfy { $0 <= 1 }, "one line each: \(lines)")
    }
}
