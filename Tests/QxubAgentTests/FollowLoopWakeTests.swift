import QxubAgent
import QxubProtocol
import QxubSystem
import QxubTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What wakes the follow loop for a job, on a manual clock: events (inotify, a pidfd) at once, and a back-off
/// of up to 10 s where events may not come; sleeping jobs are not polled.
extension InProcessAgentTests {
    @Suite("FollowLoop wake-ups on a manual clock")
    struct FollowLoopWakeTests {
        /// Counts `kill(pid, 0)` probes (the polling of a local job's processes) and answers them with
        /// `alive` for pids it is told about, as `kill(2)` otherwise.
        final class Probes {
            var times: [Double] = []
            var clock: ManualClock?
            var alive: Set<pid_t> = []

            func signal(_ pid: pid_t, _ number: Int32) -> Int32 {
                if number == 0 { times.append(clock?.now ?? 0) }
                if alive.contains(pid) { return 0 }
                return kill(pid, number) == 0 ? 0 : errno
            }
        }

        /// An agent on a manual clock watching each of `jobIDs` on channels 1, 2, …
        static func watching(
            _ jobIDs: [String],
            root: String,
            probes: Probes,
            inotify: Bool
        ) throws -> InProcessAgent {
            let clock = ManualClock()
            probes.clock = clock
            let agent = try InProcessAgent(
                stateRoot: root,
                clock: clock,
                signal: { probes.signal($0, $1) },
                configure: { $0.watchFiles = inotify }
            )
            try agent.sayHello()
            for (index, jobID) in jobIDs.enumerated() {
                try agent.send(.watch(Watch(requestID: UInt32(index + 2), jobID: jobID)), channel: UInt32(index + 1))
            }
            try agent.turn()
            try #require(agent.messages(channel: 0).isEmpty, "the watches were taken: \(agent.messages())")
            return agent
        }

        static func sleeper() throws -> ChildProcess {
            try ChildProcess.spawn(["/bin/sleep", "120"], stdin: .null, stdout: .null, stderr: .null)
        }

        static func append(_ path: String, _ text: String) throws {
            let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
            try #require(fd >= 0)
            defer { FileDescriptor.close(fd) }
            try FileDescriptor.writeAll(fd, Array(text.utf8))
        }

        @Test("a sleeping local job's script is watched through a pidfd, not probed; its death is seen at once")
        func pidfdNotProbes() throws {
            let root = try temporaryDirectory()
            let script = try Self.sleeper()
            defer {
                script.signal(SIGKILL)
                _ = script.wait()
            }
            try recordJob(
                root: root,
                jobID: "local-1",
                backend: "local",
                records: ["started": "1700000000 node1\n", "pid": "\(script.pid)\n"]
            )
            let probes = Probes()
            let agent = try Self.watching(["local-1"], root: root, probes: probes, inotify: true)
            try agent.advance(by: 120)
            #expect(probes.times.isEmpty, "probed \(probes.times.count) times")
            #expect(JobServiceTests.jobEnd(agent, channel: 1) == nil)

            // Killed from outside, without an exit record: the pidfd wakes the job, and after the 0.5 s grace
            // for a late record its end is decided.
            script.signal(SIGKILL)
            _ = script.wait()
            try agent.turn(waitingUpTo: 5)
            try agent.advance(by: 1)
            let end = try #require(JobServiceTests.jobEnd(agent, channel: 1))
            #expect(
                end
                    == .killedByScheduler(
                        .other,
                        detail:
                            "the job's processes ended without recording an exit status (killed from outside qxub?)",
                        ranFirst: true
                    )
            )
        }

        @Test("without inotify or a pidfd an idle job is checked at most every 10 s, and its output comes within that")
        func backOffWithoutEvents() throws {
            let root = try temporaryDirectory()
            // A pid no process has (pidfd_open fails); the stand-in for kill(2) says it is alive.
            let pid: pid_t = 4_194_000
            let directory = try recordJob(
                root: root,
                jobID: "local-2",
                backend: "local",
                records: ["started": "1700000000 node1\n", "pid": "\(pid)\n"]
            )
            let probes = Probes()
            probes.alive = [pid]
            let agent = try Self.watching(["local-2"], root: root, probes: probes, inotify: false)
            let start = agent.loop.now
            try agent.advance(by: 60)
            let late = probes.times.filter { $0 >= start + 30 }
            #expect(late.count <= 3, "checks between 30 s and 60 s: \(late)")
            #expect(zip(late, late.dropFirst()).allSatisfy { $1 - $0 <= 10.25 }, "\(late)")

            try Self.append(directory + "/out", "hello\n")
            try agent.advance(by: 10.5)
            #expect(JobServiceTests.output(agent, channel: 1, .stdout) == Array("hello\n".utf8))
        }

        /// `qsub -I` and `srun --pty` say on the job's terminal that the job waits, and which it is, before its
        /// wrapper runs: the user sees it while waiting. A batch job's files hold nothing before it starts.
        @Test(
            "before its started record, an interactive job's terminal output is sent, a batch job's is not",
            arguments: [("backend=local\nscheduler=pbspro\ninteractive=1\n", true), ("backend=local\n", false)]
        )
        func outputBeforeStart(meta: String, sent: Bool) throws {
            let root = try temporaryDirectory()
            // A pid no process has; the stand-in for kill(2) says it is alive (the keeper, or the batch script).
            let pid: pid_t = 4_194_001
            let text = "qsub: waiting for job 12.vm to start\r\n"
            let directory = try recordJob(
                root: root,
                jobID: "waiting-1",
                backend: "local",
                records: ["pid": "\(pid)\n", "out": text]
            )
            try FileSystem.writeAtomically(directory + "/meta", meta)
            let probes = Probes()
            probes.alive = [pid]
            let agent = try Self.watching(["waiting-1"], root: root, probes: probes, inotify: false)
            try agent.advance(by: 1)
            #expect(JobServiceTests.output(agent, channel: 1, .stdout) == (sent ? Array(text.utf8) : []))
            let phases = agent.messages(channel: 1).compactMap {
                if case .jobState(let s) = $0 { s.phase } else { nil }
            }
            #expect(phases == [.queued], "still waiting")
        }

        @Test("with inotify, output of one job among twenty idle ones arrives at once, and the others stay asleep")
        func inotifyWakesOneJob() throws {
            let root = try temporaryDirectory()
            let script = try Self.sleeper()
            defer {
                script.signal(SIGKILL)
                _ = script.wait()
            }
            var directories: [String] = []
            for index in 1...20 {
                directories.append(
                    try recordJob(
                        root: root,
                        jobID: "local-\(index)",
                        backend: "local",
                        records: ["started": "1700000000 node1\n", "pid": "\(script.pid)\n"]
                    )
                )
            }
            let probes = Probes()
            let agent = try Self.watching((1...20).map { "local-\($0)" }, root: root, probes: probes, inotify: true)
            try agent.advance(by: 120)
            let before = agent.messages().count

            try Self.append(directories[6] + "/out", "one line\n")
            try agent.turn(waitingUpTo: 5)
            try agent.advance(by: 0.01)
            #expect(JobServiceTests.output(agent, channel: 7, .stdout) == Array("one line\n".utf8))
            #expect(agent.messages().count == before + 1, "only job 7 sent something: \(agent.messages().suffix(3))")
            #expect(probes.times.isEmpty, "probed \(probes.times.count) times")
        }

        @Test(
            "output already written goes out as fast as the client reads it: no timer between reads (4 MiB, clock still)",
            arguments: [false, true]
        )
        func outputFlowsWithoutTimers(compressible: Bool) throws {
            let root = try temporaryDirectory()
            let pid: pid_t = 4_194_001
            let directory = try recordJob(
                root: root,
                jobID: "local-4",
                backend: "local",
                records: ["started": "1700000000 node1\n", "pid": "\(pid)\n"]
            )
            var generator = SeededGenerator(seed: 4)
            let size = 4 << 20
            let bytes = (0..<size).map { _ in
                compressible ? UInt8(ascii: "a") : UInt8.random(in: 0...255, using: &generator)
            }
            let fd = open(directory + "/out", O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
            try #require(fd >= 0)
            try FileDescriptor.writeAll(fd, bytes)
            FileDescriptor.close(fd)
            let probes = Probes()
            probes.alive = [pid]
            let agent = try Self.watching(["local-4"], root: root, probes: probes, inotify: false)
            // The watch's first check is a wake-up a few milliseconds on; after it the clock stands still.
            try agent.advance(by: 0.01)
            let stillAt = agent.loop.now
            func receivedCount() -> Int {
                agent.messages(channel: 1).reduce(0) { sum, message in
                    if case .output(let output) = message { return sum + output.data.count }
                    return sum
                }
            }
            // Each turn moves at most a pipe's worth (64 KiB) to the test's side: 8 MiB take about 130.
            for _ in 0..<1_000 where receivedCount() < size {
                try agent.turn(waitingUpTo: 0.02)
            }
            #expect(agent.loop.now == stillAt)
            let received = JobServiceTests.output(agent, channel: 1, .stdout)
            #expect(received.count == size, "\(received.count) of \(size) bytes without the clock moving")
            // A Bool: a failing comparison of two 4 MiB arrays would print both.
            let same = received == bytes
            #expect(same, "the bytes arrive in order, each once")
        }

        @Test("with inotify, an exit record renamed into place ends an idle job at once")
        func renamedRecordEnds() throws {
            let root = try temporaryDirectory()
            let script = try Self.sleeper()
            defer {
                script.signal(SIGKILL)
                _ = script.wait()
            }
            let directory = try recordJob(
                root: root,
                jobID: "local-3",
                backend: "local",
                records: ["started": "1700000000 node1\n", "pid": "\(script.pid)\n"]
            )
            let probes = Probes()
            let agent = try Self.watching(["local-3"], root: root, probes: probes, inotify: true)
            try agent.advance(by: 120)
            #expect(JobServiceTests.jobEnd(agent, channel: 1) == nil)

            try FileSystem.writeAtomically(directory + "/exit", "3 1700000100\n")
            try agent.turn(waitingUpTo: 5)
            try agent.advance(by: 0.01)
            #expect(JobServiceTests.jobEnd(agent, channel: 1) == .exited(3))
        }
    }
}
