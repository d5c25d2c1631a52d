import QxubAgent
import QxubProtocol
import QxubSystem
import Testing

extension InProcessAgentTests {
    /// A status query with `usage`: the agent asks the scheduler once for the finished jobs' records.
    @Suite("status with usage: the scheduler's records of finished jobs")
    struct SchedulerUsageTests {
        /// The status report for a query with `usage` of `ids`, the scheduler answering with `answer`.
        static func report(
            root: String,
            _ ids: [String],
            answer: @escaping ([String]) -> CollectedRun
        ) throws -> (StatusReport, [[String]]) {
            var asked: [[String]] = []
            weak var weakAgent: InProcessAgent?
            let agent = try InProcessAgent(
                stateRoot: root,
                clock: ManualClock(),
                commands: FollowLoopClockTests.scheduler({ weakAgent?.loop }) { arguments in
                    asked.append(arguments)
                    return answer(arguments)
                },
                configure: { $0.watchFiles = false }
            )
            weakAgent = agent
            try agent.sayHello()
            try agent.send(.statusQuery(StatusQuery(requestID: 9, jobIDs: ids, usage: true)))
            try agent.advance(by: 0.1)
            let report = try #require(
                agent.messages().lazy.compactMap { if case .statusReport(let report) = $0 { report } else { nil } }
                    .first
            )
            return (report, asked)
        }

        @Test("finished PBS jobs: one qstat -xf for all of them; a job it does not list gets a note")
        func pbs() throws {
            let root = try temporaryDirectory()
            let finished = ["started": "1700000000 node1\n", "exit": "0 1700000100\n"]
            try recordJob(root: root, jobID: "7.vm", backend: "pbspro", records: finished)
            try recordJob(root: root, jobID: "8.vm", backend: "pbspro", records: finished)
            let text = "Job Id: 7.vm\n    resources_used.cput = 00:01:00\n    resources_used.ncpus = 2\n"
            let (report, asked) = try Self.report(root: root, ["7.vm", "8.vm"]) { arguments in
                arguments.first == "qstat"
                    ? CollectedRun(exit: .exited(0), stdout: Array(text.utf8), stderr: [])
                    : CollectedRun(exit: .exited(1), stdout: [], stderr: Array("unexpected\n".utf8))
            }
            #expect(asked == [["qstat", "-xf", "7.vm", "8.vm"]])
            #expect(
                report.jobs.map(\.schedulerUsage) == [
                    SchedulerUsage(cpuMillis: 60_000, cpus: 2),
                    SchedulerUsage(note: "the scheduler no longer has job 8.vm"),
                ]
            )
        }

        @Test("a local job: the scheduler is not asked and the job has no scheduler usage")
        func local() throws {
            let root = try temporaryDirectory()
            try recordJob(root: root, jobID: "local-1", backend: "local", records: ["exit": "0 1700000100\n"])
            let (report, asked) = try Self.report(root: root, ["local-1"]) { _ in
                CollectedRun(exit: .exited(1), stdout: [], stderr: [])
            }
            #expect(asked.isEmpty)
            #expect(report.jobs.map(\.schedulerUsage) == [nil])
        }
    }
}
