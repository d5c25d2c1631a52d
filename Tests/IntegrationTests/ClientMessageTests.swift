import QxubProtocol
import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What qxub says when things go wrong on the other side, with the built binaries and the local agent
/// (a real one, or a stand-in that speaks the protocol).
@Suite("Client messages")
struct ClientMessageTests {
    @Test(
        "an agent's error is printed with its control characters escaped: a hostile agent cannot set the terminal title"
    )
    func hostileAgentError() throws {
        let sandbox = try Sandbox("hostile-agent")
        // A stand-in agent: its hello, then an error carrying escape sequences, then it waits for end of file.
        var fake = ProtocolEndpoint(hello: Hello(software: "qxub-agent 99.0.0", capabilities: []), preambleLimit: 0)
        var bytes = fake.start()
        try fake.encode(
            .error(
                ErrorMessage(
                    requestID: 1,
                    code: .submitFailed,
                    message: "refused\u{1B}]0;pwned\u{07}\r\nqxub: all good\u{9B}",
                    hint: "\u{1B}[2Jcall 555"
                )
            ),
            into: &bytes
        )
        let escaped = bytes.map { "\\" + String($0, radix: 8) }.joined()
        let agent = sandbox.directory + "/bin/hostile-agent"
        try FileSystem.writeAtomically(agent, "#!/bin/sh\nprintf '\(escaped)'\ncat >/dev/null\n", mode: 0o755)
        sandbox.environment["QXUB_AGENT"] = agent
        let run = try sandbox.qxub(["exec", "--backend", "local", "--", "true"])
        #expect(run.exit == .exited(125), "\(run.stderrText)")
        #expect(
            run.stderrText
                == "qxub: error: refused\\x1b]0;pwned\\x07\\r\\nqxub: all good\\u{9b}\n  hint: \\x1b[2Jcall 555\n",
            "\(run.stderrText)"
        )
        #expect(!run.stderr.contains(0x1B), "no escape byte reaches the terminal")
    }

    @Test(
        "the local agent killed mid-job: qxub says it was killed (not that it closed the session), reconnects, output whole"
    )
    func localAgentKilled() throws {
        let sandbox = try Sandbox("local-agent-killed")
        let child = try sandbox.start([
            "exec", "--backend", "local", "--", "for i in $(seq 1 30); do echo line $i; sleep 0.1; done",
        ])
        let first = readLines(child.stdout!, count: 1, timeout: 30)
        #expect(first == "line 1\n")
        // The agent is qxub's child (in its own process group).
        let agents = (try runCollectingOutput(["pgrep", "-P", "\(child.pid)"])).stdoutText.split(separator: "\n")
            .compactMap { pid_t($0) }
        #expect(agents.count == 1, "one agent process: \(agents)")
        for pid in agents { kill(pid, SIGKILL) }
        let rest = collect(child, timeout: 60)
        #expect(rest.exit == .exited(0), "\(rest.stderrText)")
        #expect(first + rest.stdoutText == (1...30).map { "line \($0)\n" }.joined())
        #expect(
            rest.stderrText.contains(
                "qxub: connection lost (the local agent was killed by signal 9); reconnecting (attempt 1)…"
            ),
            "\(rest.stderrText)"
        )
        #expect(!rest.stderrText.contains("the agent closed the session"), "\(rest.stderrText)")
    }

    /// The shim, where the cluster has no /proc: it says so instead of starting an agent that would abort.
    @Test(
        "no /proc where the agent runs: the shim says so (exit 71) and qxub names the cause and the fix",
        .enabled(if: getuid() == 0, "hiding /proc takes a mount namespace (root)")
    )
    func noProc() throws {
        let sandbox = try Sandbox("no-proc")
        let home = sandbox.directory + "/cluster-home"
        try FileSystem.createDirectories(home + "/.qxub/agent/9.9.9")
        try FileSystem.writeAtomically(
            home + "/.qxub/agent/9.9.9/qxub-agent",
            "#!/bin/sh\necho agent-ran\n",
            mode: 0o700
        )
        try FileSystem.writeAtomically(home + "/.qxub/agent/9.9.9/protocol", "1 1\n")
        let machine = try runCollectingOutput(["uname", "-sm"]).stdoutText.trimmingWhitespaceForTests()
        let platform = machine.replacingAll("Linux ", with: "linux-")
        try FileSystem.writeAtomically(home + "/.qxub/agent/9.9.9/platform", platform + "\n")
        let shim = Components.repositoryRoot + "/shim/qxub-shim"
        let hidden = try runCollectingOutput(
            [
                "unshare", "--mount", "--propagation", "private", "sh", "-c",
                "mount -t tmpfs none /proc && HOME=\(home) exec sh -c '. \(shim) 1 1'",
            ],
            timeout: 30
        )
        #expect(hidden.exit == .exited(71), "\(hidden.stdoutText) \(hidden.stderrText)")
        #expect(hidden.stdoutText.hasPrefix("qxub-no-proc: /proc is not mounted on "), "\(hidden.stdoutText)")
        #expect(!hidden.stdoutText.contains("agent-ran"))
        let mounted = try runCollectingOutput(["sh", "-c", "HOME=\(home) exec sh -c '. \(shim) 1 1'"], timeout: 30)
        #expect(
            mounted.stdoutText == "agent-ran\n",
            "with /proc the agent starts: \(mounted.stdoutText) \(mounted.stderrText)"
        )
        // What qxub makes of the shim's word (a stand-in prints it in the agent's place).
        let standIn = sandbox.directory + "/bin/no-proc-agent"
        try FileSystem.writeAtomically(
            standIn,
            "#!/bin/sh\necho 'qxub-no-proc: /proc is not mounted on node1'\nexit 71\n",
            mode: 0o755
        )
        sandbox.environment["QXUB_AGENT"] = standIn
        let run = try sandbox.qxub(["exec", "--backend", "local", "--", "true"])
        #expect(run.exit == .exited(69), "\(run.stderrText)")
        #expect(
            run.stderrText.contains(
                "/proc is not mounted there (a chroot or container without /proc), and the agent finds itself through /proc/self/exe"
            ),
            "\(run.stderrText)"
        )
        #expect(
            run.stderrText.contains(
                "hint: mount /proc there (`mount -t proc proc /proc`), or log in where it is mounted"
            )
        )
        #expect(!run.stderrText.contains("noexec"), "\(run.stderrText)")
    }
}
