import QxubClient
import QxubProtocol
import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The reconnection schedule as the driver runs it: real child processes for the sessions, a loop on a manual
/// clock, so the 30 s of pauses take no time and each attempt is seen at the second it is due.
@Suite("JobSessionDriver's reconnections on a manual clock")
struct JobSessionDriverClockTests {
    @Test(
        "a lost session is tried again 1, 2, 4, 8 and 15 s after each loss, never sooner; then qxub gives up with 255"
    )
    func reconnectSchedule() throws {
        // The first session: the agent's opening, then its end (as an agent that was killed).
        var agent = ProtocolEndpoint(hello: Hello(software: "test agent"), preambleLimit: 0)
        let path = "/tmp/driver-hello-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileSystem.writeAtomically(path, agent.start())
        defer { unlink(path) }
        let loop = EventLoop(clock: ManualClock())
        let first = try AgentConnection(
            command: ["/bin/sh", "-c", "cat \(path)"],
            peerName: "the local agent",
            loop: loop,
            hello: AgentConnection.hello(heartbeat: false)
        )
        // Every later session ends at once, before its hello (as a network that stays down).
        let endpoint = AgentEndpoint(platform: .local, settings: ClientSettings(agent: "/bin/false"))
        let driver = JobSessionDriver(
            machine: JobSessionStateMachine(
                .init(presentation: .exec, mode: .follow, jobs: [.attach(jobID: "J1")], peerName: "the local agent")
            ),
            endpoint: endpoint,
            connection: first,
            signals: []
        )
        var statuses: [(time: Double, status: SessionStatus)] = []
        driver.onStatus = { statuses.append((loop.now, $0)) }
        driver.start()
        let start = loop.now
        /// Handles the sessions' I/O (in real time, the clock standing still) until `count` statuses came (a
        /// session that ends at once may have been handled already while the clock moved).
        func waitForStatuses(_ count: Int) throws {
            for _ in 0..<400 where statuses.count < count { try loop.runOnce(waitingUpTo: 0.025) }
            try #require(statuses.count == count, "\(count) statuses within 10 s: \(statuses)")
        }
        try waitForStatuses(1)
        let lost = "the local agent closed the connection before the agent said hello"
        for (attempt, delay) in [1.0, 2, 4, 8, 15].enumerated() {
            // A quarter second before the pause is over: no new session yet.
            try loop.advanceTime(by: delay - 0.25)
            #expect(statuses.count == attempt + 1, "attempt \(attempt + 1) too soon: \(statuses)")
            #expect(driver.machine.state == .waitingToReconnect)
            try loop.advanceTime(by: 0.25)
            try waitForStatuses(attempt + 2)
        }
        let expected: [(Double, SessionStatus)] = [
            (0, .reconnecting(attempt: 1, reason: "the agent closed the session")),
            (1, .reconnecting(attempt: 2, reason: lost)),
            (3, .reconnecting(attempt: 3, reason: lost)),
            (7, .reconnecting(attempt: 4, reason: lost)),
            (15, .reconnecting(attempt: 5, reason: lost)),
            (
                30,
                .detached(
                    jobID: "J1",
                    message: "lost the connection to the local agent (\(lost)); job J1 is still running: "
                        + "`qxub attach J1` follows it"
                )
            ),
        ]
        #expect(statuses.map { $0.time - start } == expected.map(\.0))
        #expect(statuses.map(\.status) == expected.map(\.1))
        #expect(driver.exitCode == ExitCodes.connectionLost)
    }
}
