import QxubClient
import QxubProtocol
import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Heartbeat silence and the hello timeout, on a loop whose clock the test drives: a peer that never answers
/// (or answers once, then never again) is a real child process; only time is simulated.
@Suite("AgentConnection's timeouts on a manual clock")
struct AgentConnectionClockTests {
    @Test(
        "no hello within the hello timeout (QXUB_HELLO_TIMEOUT): the session is ended as stalled, not a moment before"
    )
    func helloTimeout() throws {
        let loop = EventLoop(clock: ManualClock())
        let timeout = 7.0
        let connection = try AgentConnection(
            command: ["/bin/sleep", "600"],
            peerName: "the test agent",
            loop: loop,
            hello: AgentConnection.hello(heartbeat: false),
            timing: .init(helloTimeout: timeout)
        )
        var closes: [ClientError?] = []
        connection.onClose = { closes.append($0) }
        try loop.advanceTime(by: timeout - 0.01)
        #expect(closes.isEmpty)
        #expect(!connection.isClosed)
        try loop.advanceTime(by: 0.02)
        let expected = ClientError(
            "no answer from the test agent in 7 s (QXUB_HELLO_TIMEOUT)",
            hint: "a slow login or agent start needs more time: set QXUB_HELLO_TIMEOUT=SECONDS (the default is 20)",
            exitCode: ExitCodes.connectionLost
        )
        #expect(closes == [expected])
        #expect(connection.stalled)
    }

    @Test("a peer that said hello and then nothing for three heartbeat intervals is ended as silent")
    func heartbeatSilence() throws {
        // The agent's opening (magic and hello), then silence: `sleep` never reads our pings nor answers.
        var agent = ProtocolEndpoint(hello: Hello(software: "test agent"), preambleLimit: 0)
        let path = "/tmp/client-hello-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileSystem.writeAtomically(path, agent.start())
        defer { unlink(path) }
        let loop = EventLoop(clock: ManualClock())
        let interval = 2.0
        let connection = try AgentConnection(
            command: ["/bin/sh", "-c", "cat \(path); exec sleep 600"],
            peerName: "the test agent",
            loop: loop,
            hello: AgentConnection.hello(heartbeat: true),
            timing: .init(heartbeatInterval: interval)
        )
        var closes: [ClientError?] = []
        connection.onClose = { closes.append($0) }
        // The hello arrives in real time; the clock stands still meanwhile.
        for _ in 0..<400 where connection.negotiation == nil { try loop.runOnce(waitingUpTo: 0.025) }
        try #require(connection.negotiation != nil)
        // Ticks at 1, 2 and 3 intervals find at most 3 intervals of silence; the 4th finds more.
        try loop.advanceTime(by: 4 * interval - 0.01)
        #expect(closes.isEmpty)
        try loop.advanceTime(by: 0.02)
        #expect(
            closes == [
                ClientError(
                    "nothing heard from the test agent for 6 s: the connection went silent",
                    exitCode: ExitCodes.connectionLost
                )
            ]
        )
        #expect(connection.silent)
        #expect(!connection.stalled)
    }
}
