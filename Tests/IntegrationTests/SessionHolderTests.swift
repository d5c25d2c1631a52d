import QxubProtocol
import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The warm session holder through the built binaries and the real sshd of Tests/Support: many qxub
/// processes over one agent session, each with exactly its own output; crashes, stale and foreign sockets,
/// idle exit, and `session_persist: 0`. Part of the serialized remote suite: they share its cluster users.
extension RemoteTests {
    struct Laptop {
        let sandbox: Sandbox
        let ssh: [String: String]
        /// Every ssh the sandbox's qxub (and its holder) ran, one argv a line (a wrapper first on PATH).
        var sshLog: String { sandbox.directory + "/ssh-calls.log" }
        var controlDirectory: String { sandbox.directory + "/cm" }
        var holderSocket: String {
            let versions = ProtocolConstants.versions
            return controlDirectory + "/holder-p\(versions.lowerBound)-\(versions.upperBound)-bashbox"
        }

        func qxub(_ arguments: [String], timeout: Double = 120) throws -> CollectedRun {
            try sandbox.qxub(arguments, timeout: timeout)
        }

        /// Agent sessions opened so far (ssh running the shim), by qxub itself or by a holder.
        func agentSessions() -> Int {
            (FileSystem.readText(sshLog) ?? "").split(separator: "\n").filter { $0.contains("qxub-shim") }.count
        }

        /// The running holder's pid (from `qxub session status`), nil when none runs.
        func holderPID() -> pid_t? {
            guard let run = try? qxub(["session", "status", "--platform", "bashbox"], timeout: 30),
                let start = run.stdoutText.firstRange(ofLiteral: "holder running (pid ")
            else { return nil }
            return pid_t(run.stdoutText[start.upperBound...].prefix { $0.isNumber })
        }

        /// Waits (bounded) for a holder to serve, and returns its pid.
        func waitForHolder() throws -> pid_t {
            var pid: pid_t?
            _ = sandbox.wait(timeout: 30) {
                pid = holderPID()
                return pid != nil
            }
            return try #require(pid, "no holder started: \(FileSystem.readText(holderLog) ?? "(no log)")")
        }

        var holderLog: String { sandbox.directory + "/home/.local/state/qxub/holder-bashbox.log" }

        /// Stops the platform's ssh master (`-N`) with SIGSTOP: its socket still accepts, but nothing passes
        /// through it any more, the holder's agent session included. Killed when the sandbox goes.
        func freezeMaster() throws -> pid_t {
            let candidates = try runCollectingOutput(["pgrep", "-f", "ControlPath=" + controlDirectory + "/bashbox"])
            let masters = candidates.stdoutText.split(separator: "\n").compactMap { pid_t($0) }.filter { pid in
                (FileSystem.readText("/proc/\(pid)/cmdline") ?? "").split(separator: "\0").contains("-N")
                    && !processEnded(pid)
            }
            try #require(masters.count == 1, "one live master for the platform: \(masters)")
            kill(masters[0], SIGSTOP)
            sandbox.cleanup.append(["kill", "-KILL", "\(masters[0])"])
            return masters[0]
        }
    }

    /// A laptop with the bash platform, the agent installed, and an ssh that logs its calls.
    func holderLaptop(_ label: String, sessionPersist: String? = "60") throws -> Laptop {
        let ssh = try Components.sshd()
        let realSSH = try #require(Environment.which("ssh", path: Environment.get("PATH") ?? "/usr/bin:/bin"))
        let sandbox = try Sandbox(
            "holder-" + label,
            fakeBinaries: ["ssh": "echo \"$*\" >> \"$(dirname \"$0\")/../ssh-calls.log\"; exec \(realSSH) \"$@\""]
        )
        try sandbox.configureRemote(
            [.init(name: "bashbox", host: "qxub-bash", workingDirectory: nil, sessionPersist: sessionPersist)],
            ssh: ssh
        )
        let laptop = Laptop(sandbox: sandbox, ssh: ssh)
        _ = try runCollectingOutput(
            [
                "ssh", "-F", ssh["QXUB_TEST_SSH_CONFIG"]!, "qxub-bash",
                "sh -c 'pkill -u $(id -u) -f \"[q]xub-agent serve\"; rm -rf $HOME/.qxub $HOME/.bashrc'",
            ],
            timeout: 60
        )
        let install = try laptop.qxub(["agent", "install", "--platform", "bashbox"])
        try #require(install.exit == .exited(0), "\(install.stderrText)")
        return laptop
    }

    func holderExec(_ script: String) -> [String] {
        ["exec", "--platform", "bashbox", "--backend", "local", "--", "sh", "-c", script]
    }

    @Test("two concurrent qxub share the holder's one session; each gets only its own output and exit code")
    func twoClients() throws {
        let laptop = try holderLaptop("two")
        let first = try laptop.qxub(holderExec("echo warm"))
        #expect(first.exit == .exited(0), "\(first.stderrText)")
        #expect(first.stdoutText == "warm\n")
        _ = try laptop.waitForHolder()
        // The first qxub's direct session and the holder's.
        #expect(laptop.agentSessions() == 2)

        let a = try laptop.sandbox.start(
            holderExec("for i in 1 2 3 4 5; do echo A$i; echo a$i >&2; sleep 0.1; done; exit 3")
        )
        let b = try laptop.sandbox.start(holderExec("for i in 1 2 3 4 5; do echo B$i; sleep 0.1; done; exit 4"))
        let runA = collect(a)
        let runB = collect(b)
        #expect(runA.exit == .exited(3), "\(runA.stderrText)")
        #expect(runB.exit == .exited(4), "\(runB.stderrText)")
        #expect(runA.stdoutText == "A1\nA2\nA3\nA4\nA5\n")
        #expect(runA.stderrText.contains("a1\na2\na3\na4\na5\n"))
        #expect(runB.stdoutText == "B1\nB2\nB3\nB4\nB5\n")
        #expect(!runB.stderrText.contains("a1"))
        #expect(laptop.agentSessions() == 2, "both went through the holder: no new ssh session")
    }

    @Test("the holder killed mid-stream: the client resumes from its offsets, output whole and once, exit code right")
    func holderKilled() throws {
        let laptop = try holderLaptop("killed")
        _ = try laptop.qxub(holderExec("true"))
        let holder = try laptop.waitForHolder()
        let child = try laptop.sandbox.start(holderExec("for i in $(seq 1 30); do echo $i; sleep 0.1; done; exit 5"))
        let early = readUntil(child.stdout!, containing: "3\n", timeout: 60)
        #expect(early.hasPrefix("1\n2\n3\n"))
        kill(holder, SIGKILL)
        let rest = collect(child, timeout: 120)
        #expect(rest.exit == .exited(5), "\(rest.stderrText)")
        #expect(early + rest.stdoutText == (1...30).map { "\($0)\n" }.joined())
    }

    @Test("a stale socket file (its holder died) is replaced; qxub runs meanwhile")
    func staleSocket() throws {
        let laptop = try holderLaptop("stale")
        _ = try laptop.qxub(["session", "status"])  // makes the control directory
        let bind = try runCollectingOutput(
            [
                "python3", "-c", "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])",
                laptop.holderSocket,
            ]
        )
        try #require(bind.exit == .exited(0), "\(bind.stderrText)")
        try #require(FileSystem.exists(laptop.holderSocket))
        let run = try laptop.qxub(holderExec("echo through"))
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        #expect(run.stdoutText == "through\n")
        _ = try laptop.waitForHolder()
        let again = try laptop.qxub(holderExec("echo again"))
        #expect(again.stdoutText == "again\n")
        #expect(laptop.agentSessions() == 2, "the replaced holder serves the second run")
    }

    @Test("a holder of another protocol version is left alone: its socket has another name")
    func otherVersion() throws {
        let laptop = try holderLaptop("version")
        _ = try laptop.qxub(["session", "status"])
        let other = laptop.controlDirectory + "/holder-p9-9-bashbox"
        // A listener that accepts and never answers: talking to it would cost the 200 ms deadline.
        let listener = try ChildProcess.spawn(
            [
                "python3", "-c",
                "import socket,sys,time\ns=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(8)\n"
                    + "print('ready', flush=True)\ns.settimeout(30)\nn=0\ntry:\n    while True:\n        s.accept(); n+=1\n"
                    + "except Exception: pass\nprint(n, flush=True)",
                other,
            ],
            stdout: .pipe
        )
        #expect(readUntil(listener.stdout!, containing: "ready\n", timeout: 30) == "ready\n")
        let run = try laptop.qxub(holderExec("echo mine"))
        #expect(run.stdoutText == "mine\n", "\(run.stderrText)")
        _ = try laptop.waitForHolder()
        #expect(FileSystem.exists(other))
        #expect(FileSystem.exists(laptop.holderSocket))
        kill(listener.pid, SIGTERM)
        _ = listener.wait()
    }

    @Test("session_persist: 0 starts no holder: every qxub opens its own session")
    func disabled() throws {
        let laptop = try holderLaptop("off", sessionPersist: "0")
        for word in ["one", "two"] {
            let run = try laptop.qxub(holderExec("echo \(word)"))
            #expect(run.stdoutText == "\(word)\n", "\(run.stderrText)")
        }
        #expect(laptop.agentSessions() == 2)
        #expect(!FileSystem.exists(laptop.holderSocket))
        let status = try laptop.qxub(["session", "status", "--platform", "bashbox"])
        #expect(status.stdoutText == "bashbox: no holder (session_persist: 0)\n")
    }

    @Test("the holder exits after session_persist with no client, and removes its socket")
    func idleExit() throws {
        let laptop = try holderLaptop("idle", sessionPersist: "2s")
        _ = try laptop.qxub(holderExec("true"))
        let pid = try laptop.waitForHolder()
        #expect(laptop.sandbox.wait(timeout: 30) { processEnded(pid) })
        #expect(!FileSystem.exists(laptop.holderSocket))
        #expect((FileSystem.readText(laptop.holderLog) ?? "").contains("ending: no client for 2 s"))
    }

    @Test(
        "a holder still starting (its agent session not up) is stopped too: it never serves an agent removed meanwhile"
    )
    func stopStartingHolder() throws {
        let laptop = try holderLaptop("starting")
        // Every login on the cluster now takes 5 s: the holder below is starting for that long.
        _ = try runCollectingOutput(
            ["ssh", "-F", laptop.ssh["QXUB_TEST_SSH_CONFIG"]!, "qxub-bash", "echo 'sleep 5' > $HOME/.bashrc"],
            timeout: 60
        )
        laptop.sandbox.cleanup.append([
            "ssh", "-F", laptop.ssh["QXUB_TEST_SSH_CONFIG"]!, "qxub-bash", "rm -f $HOME/.bashrc",
        ])
        let holder = try laptop.sandbox.start(["session", "serve", "--platform", "bashbox"])
        let lock = laptop.holderSocket + ".lock"
        #expect(
            laptop.sandbox.wait(timeout: 10) { (FileSystem.readText(lock) ?? "") == "\(holder.pid)\n" },
            "the starting holder wrote its pid into its lock"
        )
        let started = MonotonicClock.now()
        let stop = try laptop.qxub(["session", "stop", "--platform", "bashbox"])
        #expect(stop.stdoutText == "bashbox: holder stopped (pid \(holder.pid))\n", "\(stop.stderrText)")
        #expect(MonotonicClock.now() - started < 4, "stop waits at most 2 s for it")
        // It ends once its ssh session does (the login's sleep), and never listens meanwhile.
        let ended = collect(holder, timeout: 30)
        #expect(ended.exit == .exited(0), "\(ended.stderrText)")
        #expect(ended.stderrText.contains("ending: signal"), "\(ended.stderrText)")
        #expect(!ended.stderrText.contains("serving bashbox"), "\(ended.stderrText)")
        #expect(!FileSystem.exists(laptop.holderSocket), "it never listened")
    }

    @Test("another user cannot use the holder: SO_PEERCRED refuses the connection before any byte")
    func otherUser() throws {
        let laptop = try holderLaptop("peer")
        _ = try laptop.qxub(holderExec("true"))
        _ = try laptop.waitForHolder()
        // The private directory alone keeps others out; opened here so the holder's own check is what is tested.
        chmod(laptop.controlDirectory, 0o711)
        chmod(laptop.holderSocket, 0o777)
        defer { chmod(laptop.controlDirectory, 0o700) }
        let probe = try runCollectingOutput(
            [
                "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c",
                "import socket,sys\ns=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(10)\n"
                    + "print(len(s.recv(100)))",
                laptop.holderSocket,
            ],
            timeout: 30
        )
        #expect(probe.exit == .exited(0), "\(probe.stderrText)")
        #expect(probe.stdoutText == "0\n", "closed without a hello")
        #expect((FileSystem.readText(laptop.holderLog) ?? "").contains("refused a connection from uid 65534"))
        // The user's own qxub still gets through.
        chmod(laptop.controlDirectory, 0o700)
        let run = try laptop.qxub(holderExec("echo still"))
        #expect(run.stdoutText == "still\n")
        #expect(laptop.agentSessions() == 2)
    }

    @Test(
        "a request through a holder whose ssh master hangs is retried once over a direct session, within seconds",
        arguments: [
            "1",  // run warm in a fork of the holder, which has no terminal: it hands the request back
            "0",  // run by the qxub itself: it leaves the holder for a direct session
        ]
    )
    func hungMasterRequest(warmStart: String) throws {
        let laptop = try holderLaptop("hungreq")
        laptop.sandbox.environment["QXUB_HELLO_TIMEOUT"] = "3"
        laptop.sandbox.environment["QXUB_WARM_START"] = warmStart
        let terse = try laptop.qxub(["exec", "--terse", "--platform", "bashbox", "--backend", "local", "--", "true"])
        try #require(terse.exit == .exited(0), "\(terse.stderrText)")
        let id = terse.stdoutText.trimmingWhitespaceForTests()
        let holder = try laptop.waitForHolder()
        _ = try laptop.freezeMaster()
        let started = MonotonicClock.now()
        let status = try laptop.qxub(["status", id, "--platform", "bashbox", "--format", "json"], timeout: 90)
        let elapsed = MonotonicClock.now() - started
        #expect(status.exit == .exited(0), "\(status.stderrText)")
        #expect(status.stdoutText.contains(id) && status.stdoutText.contains("finished"), "\(status.stdoutText)")
        // The holder's own silence limit is 30 s (three heartbeats); the stall is noticed after QXUB_HELLO_TIMEOUT
        // (3 s), and the direct session replaces the hung master after another 3 s.
        #expect(elapsed < 20, "answered after \(elapsed) s")
        let log = FileSystem.readText(laptop.sandbox.directory + "/home/.local/state/qxub/qxub.log") ?? ""
        #expect(log.contains("session holder for bashbox (pid \(holder)): its agent session stalled"), "\(log)")
        #expect(laptop.sandbox.wait(timeout: 10) { processEnded(holder) }, "the stalled holder was stopped")
    }

    @Test("a holder started by `qxub exec --config FILE` reads FILE too: it serves a platform defined only there")
    func configFile() throws {
        let laptop = try holderLaptop("config")
        let file = laptop.sandbox.directory + "/extra.yaml"
        try #require(rename(laptop.sandbox.directory + "/config/qxub/config.yaml", file) == 0)
        laptop.sandbox.cleanup.append([BuiltProducts.qxub, "session", "stop", "--config", file])
        let run = try laptop.qxub(
            ["exec", "--config", file, "--platform", "bashbox", "--backend", "local", "--", "echo from the file"]
        )
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        #expect(run.stdoutText == "from the file\n")
        var status = ""
        let serving = laptop.sandbox.wait(timeout: 30) {
            let run = try? laptop.qxub(["session", "status", "--config", file, "--platform", "bashbox"], timeout: 30)
            status = run?.stdoutText ?? ""
            return status.hasPrefix("bashbox: holder running (pid ")
        }
        #expect(serving, "\(status) \(FileSystem.readText(laptop.holderLog) ?? "(no holder log)")")
        let again = try laptop.qxub(
            ["exec", "--config", file, "--platform", "bashbox", "--backend", "local", "--", "echo again"]
        )
        #expect(again.stdoutText == "again\n", "\(again.stderrText)")
        #expect(laptop.agentSessions() == 2, "the second run went through the holder")
    }
}
