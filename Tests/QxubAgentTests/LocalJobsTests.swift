import QxubAgent
import QxubProtocol
import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Local jobs' processes: whether they are there, and a cancel's teardown of their process group.
extension InProcessAgentTests {
    @Suite("LocalJobs: liveness and teardown")
    struct LocalJobsTests {
        @Test(
            "kill(pid, 0): success and EPERM (a process we may not signal) are alive, ESRCH is gone",
            arguments: [(Int32(0), true), (EPERM, true), (ESRCH, false)]
        )
        func liveness(_ answer: Int32, _ alive: Bool) {
            let jobs = LocalJobs(loop: EventLoop(), grace: 1) { _, _ in answer }
            #expect(jobs.isAlive(4242) == alive)
        }

        /// kill(2) as it answers for the pid of another user's process, and as the system answers for the rest.
        static func otherUsers(_ pids: Set<pid_t>) -> LocalJobs.Signaller {
            { pid, signal in pids.contains(abs(pid)) ? EPERM : LocalJobs.systemSignal(pid, signal) }
        }

        @Test("status of a local job whose process answers EPERM: running, as the follow loop sees it")
        func statusWithEPERM() throws {
            let root = try temporaryDirectory()
            try recordJob(
                root: root,
                jobID: "local-eperm",
                backend: "local",
                records: ["started": "1700000000 node\n", "pid": "424242\n"]
            )
            let agent = try InProcessAgent(stateRoot: root, signal: Self.otherUsers([424242]))
            try agent.sayHello()
            try agent.send(.statusQuery(StatusQuery(requestID: 9, jobIDs: ["local-eperm"])))
            #expect(try agent.run { !$0.replies(to: 9).isEmpty })
            let report = try #require(
                agent.replies(to: 9).first.flatMap { if case .statusReport(let r) = $0 { r } else { nil } }
            )
            #expect(report.jobs.map(\.state.phase) == [.running])
            #expect(report.jobs.first?.termination == nil)
        }

        /// The pids of the processes of group `group` that are not zombies (read from /proc, in the test only:
        /// a container's init may leave the job's orphans as zombies, which count as gone).
        static func liveMembers(of group: pid_t) -> [pid_t] {
            FileSystem.listDirectory("/proc").compactMap { name -> pid_t? in
                guard let pid = pid_t(name), let stat = FileSystem.readText("/proc/\(name)/stat"),
                    let close = stat.lastIndex(of: ")")
                else { return nil }
                // After the command name: state, ppid, pgrp.
                let fields = stat[stat.index(after: close)...].split(separator: " ")
                guard fields.count > 2, fields[0] != "Z", pid_t(fields[2]) == group else { return nil }
                return pid
            }
        }

        static let ignoresTerm = JobSpec.Command.shell("trap '' TERM; echo started; sleep 60; echo never")

        /// Submits a job that ignores SIGTERM, watches it until it has started and cancels it; returns its
        /// process group.
        static func startAndCancel(_ agent: InProcessAgent) throws -> pid_t {
            let jobID = try JobServiceTests.submit(agent, ignoresTerm)
            try agent.send(.watch(Watch(requestID: 2, jobID: jobID)), channel: 1)
            #expect(
                try agent.run {
                    String(decoding: JobServiceTests.output($0, channel: 1, .stdout), as: UTF8.self) == "started\n"
                }
            )
            try agent.send(.cancel(JobRequest(requestID: 3, jobID: jobID)))
            #expect(try agent.run { !$0.replies(to: 3).isEmpty })
            #expect(agent.replies(to: 3) == [.cancelResult(CancelResult(requestID: 3, jobID: jobID, wasActive: true))])
            let directory = try #require(JobStore(root: agent.stateRoot).job(id: jobID, defaultKind: .local)?.directory)
            return try #require(FileSystem.readText(directory + "/pid").flatMap { pid_t($0.trimmingWhitespace()) })
        }

        @Test("a cancelled local job that ignores SIGTERM is killed by the agent once the grace has passed")
        func killAfterGrace() throws {
            let agent = try InProcessAgent(stateRoot: try temporaryDirectory(), configure: { $0.cancelGrace = 0.5 })
            let group = try Self.startAndCancel(agent)
            // Well within the 10 s that the detached `sleep 10; kill -9` helper took.
            #expect(try agent.run(timeout: 5) { JobServiceTests.jobEnd($0, channel: 1) != nil })
            #expect(JobServiceTests.jobEnd(agent, channel: 1) == .cancelled(ranFirst: true))
            #expect(Self.liveMembers(of: group).isEmpty)
            #expect(
                !String(decoding: JobServiceTests.output(agent, channel: 1, .stdout), as: UTF8.self).contains("never")
            )
        }

        @Test("an agent whose client left after a cancel stays until the job's process group is torn down")
        func teardownOutlivesTheClient() throws {
            let agent = try InProcessAgent(stateRoot: try temporaryDirectory(), configure: { $0.cancelGrace = 0.5 })
            let group = try Self.startAndCancel(agent)
            agent.closeClientSide()
            try agent.run()
            #expect(agent.session.ending == .clientClosed)
            #expect(agent.service.workInFlight == 1, "the teardown is work in flight")
            #expect(!Self.liveMembers(of: group).isEmpty, "SIGTERM alone does not end this job")
            try AgentServer.finishWorkInFlight(of: agent.service, on: agent.loop)
            #expect(agent.service.workInFlight == 0)
            // SIGKILL was sent before the work ended; its delivery is the kernel's, within moments.
            let deadline = MonotonicClock.now() + 5
            while !Self.liveMembers(of: group).isEmpty && MonotonicClock.now() < deadline { usleep(10_000) }
            #expect(Self.liveMembers(of: group).isEmpty, "no process of the job is left")
        }

        @Test("a teardown with steps of its own: each signal to the group in order, SIGKILL once the wait is over")
        func teardownWithOwnSteps() throws {
            let loop = EventLoop(clock: ManualClock())
            var sent: [Int32] = []
            let jobs = LocalJobs(loop: loop, grace: 10) { pid, signal in
                #expect(pid == -4242)
                if signal != 0 { sent.append(signal) }
                return 0
            }
            #expect(jobs.terminate(group: 4242, steps: [.signal(SIGHUP), .signal(SIGTERM), .wait(seconds: 2)]))
            #expect(sent == [SIGHUP, SIGTERM])
            try loop.advanceTime(by: 1.9)
            #expect(sent == [SIGHUP, SIGTERM])
            try loop.advanceTime(by: 0.2)
            #expect(sent == [SIGHUP, SIGTERM, SIGKILL])
            #expect(jobs.teardowns == 0)
        }
    }
}
