import QxubProtocol
import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A reader that stops reading our stdout (a pager the user paused) must not stall the session.
@Suite("qxub exec with a stdout nobody reads for a while", .serialized)
struct StalledStdoutTests {
    /// Kills the jobs of `sandbox` that are still running.
    static func killJobs(_ sandbox: Sandbox) {
        for directory in sandbox.jobDirectories {
            if let pid = FileSystem.readText(directory + "/pid").flatMap({ pid_t($0.trimmingWhitespaceForTests()) }) {
                kill(-pid, SIGKILL)
            }
        }
    }

    @Test(
        "stdout unread for longer than 3 heartbeat intervals: no silence, then every byte once and the job's exit status"
    )
    func longPause() throws {
        let sandbox = try Sandbox("stalled-stdout-long")
        sandbox.environment["QXUB_HEARTBEAT_INTERVAL"] = "0.2"
        let lines = 400_000
        let child = try sandbox.start(["exec", "--backend", "local", "--", "seq 1 \(lines); sleep 2; exit 7"])
        defer { Self.killJobs(sandbox) }
        // Nobody reads our stdout until the job has ended: 2 s at least, 10 heartbeat intervals.
        #expect(sandbox.wait { sandbox.jobDirectories.contains { FileSystem.exists($0 + "/exit") } })
        let run = collect(child, timeout: 60)
        let expected = (1...lines).map { "\($0)\n" }.joined()
        #expect(run.stdoutText.utf8.count == expected.utf8.count)
        #expect(run.stdoutText == expected, "every byte once, in order")
        #expect(run.exit == .exited(7), "\(run.stderrText)")
        #expect(!run.stderrText.contains("connection lost"), "\(run.stderrText)")
    }

    @Test("stdout unread: Ctrl-C still reaches the session and cancels; then every byte once, exit 130")
    func pausedReader() throws {
        let sandbox = try Sandbox("stalled-stdout")
        // A silence limit of 0.6 s: a loop blocked on stdout would lose the session many times over.
        sandbox.environment["QXUB_HEARTBEAT_INTERVAL"] = "0.2"
        let lines = 400_000
        let child = try sandbox.start(["exec", "--backend", "local", "--", "seq 1 \(lines); exec sleep 300"])
        defer { Self.killJobs(sandbox) }
        let expected = (1...lines).map { "\($0)\n" }.joined()
        // The job has written everything (far more than a pipe holds) while nobody reads our stdout.
        #expect(
            sandbox.wait {
                sandbox.jobDirectories.contains { FileSystem.read($0 + "/out")?.count == expected.utf8.count }
            }
        )
        // Ctrl-C reaches a loop that is not blocked on the pipe: the cancel goes out while stdout is still full.
        kill(child.pid, SIGINT)
        let said = readUntil(child.stderr!, containing: "(press Ctrl-C again", timeout: 20)
        #expect(said.contains("qxub: cancelling job local-"), "\(said)")
        let run = collect(child, timeout: 60)
        let stderr = said + run.stderrText
        #expect(run.stdoutText.utf8.count == expected.utf8.count)
        #expect(run.stdoutText == expected, "every byte once, in order")
        #expect(run.exit == .exited(130), "a cancelled job: \(stderr)")
        #expect(!stderr.contains("connection lost"), "\(stderr)")
        #expect(!stderr.contains("went silent"), "\(stderr)")
    }
}
