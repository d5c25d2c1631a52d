import QxubAgent
import QxubProtocol
import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The agent's session logic in this process: what it answers, and how it ends on hostile input.
/// The in-process agent tests, one at a time: the agent is one session per process (it ignores SIGPIPE and
/// reaps its local jobs' processes), and several local jobs at once would compete for two cores.
@Suite("qxub-agent's library in process", .serialized)
enum InProcessAgentTests {}

extension InProcessAgentTests {
    @Suite("AgentSession in process")
    struct AgentSessionTests {
        @Test("hello, then a ping is answered with its nonce, and goodbye ends the session cleanly")
        func helloPingGoodbye() throws {
            let agent = try InProcessAgent(stateRoot: try temporaryDirectory())
            try agent.sayHello()
            try agent.send(.ping(Ping(nonce: 4242)))
            #expect(try agent.run { $0.messages().contains(.pong(Pong(nonce: 4242))) })
            let negotiation = try #require(
                agent.events.first.flatMap { if case .ready(let negotiation) = $0 { negotiation } else { nil } },
                "the first event is the agent's hello: \(agent.events)"
            )
            #expect(negotiation.peer.software == "qxub-agent \(QxubVersion.current)")
            #expect(negotiation.peer.scheduler == "local")
            try agent.send(.goodbye(Goodbye(reason: "done")))
            try agent.run()
            #expect(agent.session.ending == .clientClosed)
            #expect(agent.session.ending?.exitStatus == 0)
        }

        @Test("a client gone before the agent's hello ends the session in start(), and stdin is no longer watched")
        func clientGoneBeforeHello() throws {
            ignoreBrokenPipes()
            // stdin is /dev/null (always readable, at its end); stdout is a pipe whose reader has gone.
            let input = open("/dev/null", O_RDONLY)
            let output = try FileDescriptor.pipe()
            FileDescriptor.close(output.read)
            defer {
                FileDescriptor.close(input)
                FileDescriptor.close(output.write)
            }
            let loop = EventLoop()
            let session = AgentSession(
                loop: loop,
                input: input,
                output: output.write,
                hello: AgentServer.hello(scheduler: "local")
            )
            try session.start()
            #expect(session.ending == .clientClosed)
            // A reader left on a stdin that is always readable would keep the loop busy forever.
            #expect(!loop.isWatching(input))
            #expect(!loop.isWatching(output.write))
        }

        @Test("an unknown request gets an error naming it, and the session goes on")
        func unknownRequest() throws {
            let agent = try InProcessAgent(stateRoot: try temporaryDirectory())
            try agent.sayHello()
            try agent.send(.unknown(FrameType(rawValue: 0x7E), requestID: 9))
            try agent.send(.ping(Ping(nonce: 1)))
            #expect(try agent.run { $0.messages().contains(.pong(Pong(nonce: 1))) })
            let errors = agent.messages().compactMap { message -> ErrorMessage? in
                if case .error(let error) = message { return error }
                return nil
            }
            #expect(errors.count == 1)
            #expect(errors.first?.requestID == 9)
            #expect(errors.first?.code == .unknownRequest)
            #expect(agent.session.ending == nil, "the session survives an unknown request")
        }

        @Test("a watch for a job nobody submitted is an error with a hint, not a hang")
        func watchUnknownJob() throws {
            let agent = try InProcessAgent(stateRoot: try temporaryDirectory())
            try agent.sayHello()
            try agent.send(.watch(Watch(requestID: 5, jobID: "no-such-job")), channel: 3)
            #expect(
                try agent.run { agent in
                    agent.messages().contains { if case .error(let error) = $0 { error.requestID == 5 } else { false } }
                }
            )
            let error = try #require(
                agent.replies(to: 5).first.flatMap { if case .error(let e) = $0 { e } else { nil } }
            )
            #expect(error.code == .unknownJob)
            #expect(error.message.contains("no-such-job"))
            #expect(error.hint.contains("qxub history"))
        }

        @Test("a frame longer than the agent accepts ends the session with a protocol error, before any payload")
        func oversizeFrame() throws {
            let agent = try InProcessAgent(stateRoot: try temporaryDirectory())
            try agent.sayHello()
            #expect(try agent.run { $0.events.contains { if case .ready = $0 { true } else { false } } })
            // A header that declares 1 GiB of payload, then nothing.
            var header: [UInt8] = []
            FrameHeader(length: 1 << 30, type: .ping, flags: [], channel: 0).write(into: &header)
            try agent.write(header)
            try agent.run()
            let error = try #require(agent.session.ending?.protocolError)
            #expect(error.declaredFrameLength == 1 << 30, "frameTooLarge with the declared length: \(error)")
            #expect(agent.session.ending?.exitStatus == 2)
        }

        @Test("random bytes instead of a hello end the session cleanly with a protocol error")
        func garbageInsteadOfHello() throws {
            let agent = try InProcessAgent(stateRoot: try temporaryDirectory())
            var generator = SystemRandomNumberGenerator()
            try agent.write((0..<4096).map { _ in UInt8.random(in: 0...255, using: &generator) })
            try agent.run(timeout: 10)
            #expect(
                agent.session.ending?.protocolError != nil,
                "random bytes end the session with a protocol error: \(String(describing: agent.session.ending))"
            )
            #expect(agent.messages().isEmpty, "nothing is answered to a client that never said hello")
        }

        @Test("the client closing its end in the middle of a frame is a protocol error (truncation), not a hang")
        func truncatedFrame() throws {
            let agent = try InProcessAgent(stateRoot: try temporaryDirectory())
            try agent.sayHello()
            // A header that promises 8 bytes of payload, and 3 of them.
            var frame: [UInt8] = []
            FrameHeader(length: 8, type: .ping, flags: [], channel: 0).write(into: &frame)
            try agent.write(frame + [1, 2, 3])
            agent.closeClientSide()
            try agent.run(timeout: 10)
            #expect(agent.session.ending == .protocolError(.truncated(missing: 5)))
        }

        @Test("a heartbeat client silent for 90 s is let go; its pings keep the session (manual clock)")
        func silenceOfAHeartbeatClient() throws {
            for pings in [false, true] {
                let agent = try InProcessAgent(
                    stateRoot: try temporaryDirectory(),
                    clientHello: Hello(
                        software: "qxub-agent-tests",
                        capabilities: [ProtocolConstants.capabilityHeartbeat]
                    ),
                    clock: ManualClock()
                )
                try agent.sayHello()
                try agent.turn()
                try #require(agent.session.negotiation != nil, "the client's hello was read")
                // The agent's hello, written at 0 s, counts as the client's last sign of life when the first check
                // (every 15 s) sees it: 15 s.
                if pings {
                    try agent.advance(by: 60)
                    try agent.send(.ping(Ping(nonce: 7)))
                    try agent.turn()
                    #expect(agent.messages().contains(.pong(Pong(nonce: 7))))
                    try agent.advance(by: 60)
                    #expect(agent.session.ending == nil, "heard at 60 s: still there at 120 s")
                } else {
                    try agent.advance(by: 104)
                    #expect(agent.session.ending == nil, "89 s of silence is not yet 90")
                    try agent.advance(by: 16)
                    #expect(agent.session.ending == .clientClosed, "silent since 15 s: let go by 120 s")
                }
            }
        }
    }
}

extension AgentSession.Ending {
    var protocolError: ProtocolError? {
        if case .protocolError(let error) = self { error } else { nil }
    }
}

extension ProtocolError {
    var declaredFrameLength: Int? {
        if case .frameTooLarge(let declared, _) = self { declared } else { nil }
    }
}
