import QxubAgent
import QxubProtocol
import QxubSystem
import Testing

extension InProcessAgentTests {
    /// Issue 13, item 6: a job that could not open its output files ends with 78, and the agent says which
    /// files (the job script's own message went to the job log only).
    @Suite("Unwritable output files")
    struct OutputFailureTests {
        @Test("an exit record with note 'output' ends the job with 78 and the paths it could not write")
        func outputNote() throws {
            let root = try temporaryDirectory()
            let directory = try recordJob(
                root: root,
                jobID: "7.pbs",
                backend: "pbspro",
                records: ["exit": "78 1700000100 output\n"]
            )
            let agent = try FollowLoopClockTests.watching("7.pbs", root: root) { arguments in
                CollectedRun(exit: .exited(0), stdout: [], stderr: [])
            }
            try agent.advance(by: 5)
            #expect(
                JobServiceTests.jobEnd(agent, channel: 1)
                    == .exitUnrecorded(
                        78,
                        detail: "the job could not write its output files on its node (\(directory)/out, "
                            + "\(directory)/err): check that their directory exists and is writable there"
                    )
            )
        }
    }
}
