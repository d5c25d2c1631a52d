import QxubAgent
import QxubProtocol
import QxubSystem
import Testing

/// The follow loop's waits, on a manual clock: what the scheduler is given time to say, in milliseconds.
extension InProcessAgentTests {
    @Suite("FollowLoop on a manual clock")
    struct FollowLoopClockTests {
        /// A scheduler that answers every command with `answer` (on the loop, as a real command would).
        static func scheduler(
            _ loop: @escaping () -> EventLoop?,
            answer: @escaping ([String]) -> CollectedRun
        ) -> CommandRunner {
            CommandRunner { arguments, _, completion in
                let run = answer(arguments)
                loop()?.schedule(after: 0) { completion(run) }
            }
        }

        /// An agent on a manual clock whose scheduler answers with `answer`, watching `jobID` on channel 1.
        static func watching(
            _ jobID: String,
            root: String,
            answer: @escaping ([String]) -> CollectedRun
        ) throws -> InProcessAgent {
            weak var weakAgent: InProcessAgent?
            let agent = try InProcessAgent(
                stateRoot: root,
                clock: ManualClock(),
                commands: scheduler({ weakAgent?.loop }, answer: answer),
                configure: { $0.watchFiles = false }
            )
            weakAgent = agent
            try agent.sayHello()
            try agent.send(.watch(Watch(requestID: 2, jobID: jobID)), channel: 1)
            try agent.turn()
            try #require(agent.messages(channel: 0).isEmpty, "the watch was taken: \(agent.messages())")
            return agent
        }

        @Test("a PBS job's own TERM record waits 30 s for the scheduler's verdict, then is its end")
        func verdictWait() throws {
            let root = try temporaryDirectory()
            try recordJob(
                root: root,
                jobID: "7.pbs",
                backend: "pbspro",
                records: ["started": "1700000000 node1\n", "exit": "143 1700000100 term\n"]
            )
            // qstat cannot reach the server: no verdict ever comes.
            let agent = try Self.watching("7.pbs", root: root) { _ in
                CollectedRun(exit: .exited(2), stdout: [], stderr: Array("qstat: cannot connect to server\n".utf8))
            }
            try agent.advance(by: 29.9)
            #expect(JobServiceTests.jobEnd(agent, channel: 1) == nil, "29.9 s: still waiting for the scheduler")
            // Decided at the next tick (at most 0.5 s apart while nothing happens).
            try agent.advance(by: 0.7)
            #expect(JobServiceTests.jobEnd(agent, channel: 1) == .signaled(15))
        }

        static func squeue(_ line: String) -> ([String]) -> CollectedRun {
            { arguments in
                arguments.first == "squeue"
                    ? CollectedRun(exit: .exited(0), stdout: Array((line + "\n").utf8), stderr: [])
                    : CollectedRun(exit: .exited(1), stdout: [], stderr: Array("unexpected \(arguments)\n".utf8))
            }
        }

        @Test("Slurm's 'finished' waits 3 s for a late exit record before its own verdict is the end")
        func lateRecordGrace() throws {
            let root = try temporaryDirectory()
            try recordJob(root: root, jobID: "7", backend: "slurm", records: ["started": "1700000000 node1\n"])
            let agent = try Self.watching("7", root: root, answer: Self.squeue("7|TIMEOUT|node1|TimeLimit"))
            // The first answer arrives with the first tick (a few ms after the watch).
            try agent.advance(by: 2.9)
            #expect(JobServiceTests.jobEnd(agent, channel: 1) == nil, "under 3 s since the scheduler said so")
            // Decided at the next tick (at most 0.5 s apart while nothing happens).
            try agent.advance(by: 0.7)
            let end = try #require(JobServiceTests.jobEnd(agent, channel: 1))
            #expect(
                { if case .killedByScheduler(.walltime, _, ranFirst: true) = end { true } else { false } }(),
                "\(end)"
            )
        }

        @Test("an exit record that arrives within the 3 s grace is the job's end, not the scheduler's word")
        func lateRecordWins() throws {
            let root = try temporaryDirectory()
            let directory = try recordJob(
                root: root,
                jobID: "7",
                backend: "slurm",
                records: ["started": "1700000000 node1\n"]
            )
            let agent = try Self.watching("7", root: root, answer: Self.squeue("7|TIMEOUT|node1|TimeLimit"))
            try agent.advance(by: 2)
            try FileSystem.writeAtomically(directory + "/exit", "4 1700000100\n")
            try agent.advance(by: 0.5)
            #expect(JobServiceTests.jobEnd(agent, channel: 1) == .exited(4))
        }
    }
}
