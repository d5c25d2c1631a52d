import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 13, item 5: a `definition:` URL whose server never answers costs one bounded fetch per URL, then
/// nothing for the back-off time.
@Suite("Definition URL fetch")
struct DefinitionFetchTests {
    @Test(
        "two platforms on one silent URL: one connection, bounded; the next run within the back-off does not connect"
    )
    func silentServer() throws {
        let sandbox = try Sandbox("definition-fetch")
        let count = sandbox.directory + "/accepted"
        let listener = try SilentListener(countFile: count, sandbox: sandbox)
        defer { listener.stop() }
        let port = listener.port
        let url = "http://127.0.0.1:\(port)/gadi.yaml"
        try FileSystem.createDirectories(sandbox.directory + "/config/qxub")
        sandbox.environment["XDG_CONFIG_HOME"] = sandbox.directory + "/config"
        sandbox.environment["XDG_CACHE_HOME"] = sandbox.directory + "/cache"
        try FileSystem.writeAtomically(
            sandbox.directory + "/config/qxub/config.yaml",
            "platforms:\n  one:\n    definition: \(url)\n  two:\n    definition: \(url)\n"
        )

        let start = MonotonicClock.now()
        let first = try sandbox.qxub(["exec", "--dry", "--backend", "pbspro", "--", "true"], timeout: 60)
        let elapsed = MonotonicClock.now() - start
        #expect(first.exit == .exited(0), "\(first.stderrText)")
        #expect(elapsed < 15, "the fetch is bounded: \(elapsed) s")
        #expect(FileSystem.readText(count) == "1", "one connection for the one URL")
        #expect(
            first.stderrText.split(separator: "\n").filter { $0.contains(url) }.count == 1,
            "said once: \(first.stderrText)"
        )
        #expect(first.stderrText.contains("not retried for 10 min"), "\(first.stderrText)")

        let second = try sandbox.qxub(["exec", "--dry", "--backend", "pbspro", "--", "true"], timeout: 60)
        #expect(second.exit == .exited(0), "\(second.stderrText)")
        #expect(FileSystem.readText(count) == "1", "no new connection within the back-off")
        #expect(second.stderrText.contains("the fetch failed 0 min ago"), "\(second.stderrText)")
        #expect(
            second.stderrText.split(separator: "\n").filter { $0.contains(url) }.count == 1,
            "said once: \(second.stderrText)"
        )
    }

    @Test("a stale cached copy and two platforms on one silent URL: one bounded fetch, the copy used, said once")
    func staleCopy() throws {
        let sandbox = try Sandbox("definition-stale")
        let count = sandbox.directory + "/accepted"
        let listener = try SilentListener(countFile: count, sandbox: sandbox)
        defer { listener.stop() }
        let url = "http://127.0.0.1:\(listener.port)/gadi.yaml"
        try FileSystem.createDirectories(sandbox.directory + "/config/qxub")
        sandbox.environment["XDG_CONFIG_HOME"] = sandbox.directory + "/config"
        sandbox.environment["XDG_CACHE_HOME"] = sandbox.directory + "/cache"
        try FileSystem.writeAtomically(
            sandbox.directory + "/config/qxub/config.yaml",
            "defaults:\n  platform: one\nplatforms:\n  one:\n    definition: \(url)\n  two:\n    definition: \(url)\n"
        )
        // The cache's file name: the URL with anything but letters, digits, `.` and `-` made `_`.
        let cached =
            sandbox.directory + "/cache/qxub/platforms/"
            + String(url.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" ? $0 : "_" }) + ".yaml"
        try FileSystem.createDirectories(sandbox.directory + "/cache/qxub/platforms")
        try FileSystem.writeAtomically(
            cached,
            try #require(FileSystem.readText(Components.repositoryRoot + "/docs/platforms/nci_gadi.yaml"))
        )
        #expect(try runCollectingOutput(["touch", "-d", "2 days ago", cached]).exit == .exited(0))

        let start = MonotonicClock.now()
        let run = try sandbox.qxub(["exec", "--dry", "--backend", "pbspro", "-q", "auto", "--", "true"], timeout: 90)
        let elapsed = MonotonicClock.now() - start
        #expect(run.exit == .exited(0), "\(run.stderrText)")
        #expect(elapsed < 15, "one bounded fetch: \(elapsed) s")
        #expect(FileSystem.readText(count) == "1", "one connection for the one URL")
        #expect(run.stdoutText.contains("#PBS -q "), "the cached definition chose a queue: \(run.stdoutText)")
        let warnings = run.stderrText.split(separator: "\n").filter { $0.contains(url) }
        #expect(warnings.count == 1, "said once: \(run.stderrText)")
        #expect(warnings.first?.contains("using the copy cached 48 h ago") == true, "\(run.stderrText)")
    }
}

/// A loopback TCP listener that accepts and never answers (a python3 child); it writes how many connections
/// it accepted to `countFile`.
private struct SilentListener {
    let process: ChildProcess
    let port: String

    init(countFile: String, sandbox: Sandbox) throws {
        process = try ChildProcess.spawn(
            [
                "python3", "-c",
                """
                import socket, sys
                s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
                print(s.getsockname()[1], flush=True)
                held = []
                while True:
                    c, _ = s.accept(); held.append(c)
                    open(sys.argv[1], "w").write(str(len(held)))
                """,
                countFile,
            ],
            environment: sandbox.environmentList,
            stdin: .null,
            stdout: .pipe,
            stderr: .null
        )
        port = readLines(try #require(process.stdout), count: 1, timeout: 10).trimmingWhitespaceForTests()
        try #require(Int(port) != nil, "listener port: \(port)")
    }

    func stop() {
        process.signal(SIGKILL)
        _ = process.wait()
    }
}
