import QxubProtocol
import Testing

@Suite("Protocol endpoint: magic, hello, negotiation")
struct ProtocolEndpointTests {
    static let clientHello = Hello(software: "qxub 0.1.0")
    static let agentHello = Hello(software: "qxub-agent 0.1.0", platform: "linux-x86_64", scheduler: "slurm")

    /// Runs both sides' openings into each other, returning both endpoints after the hellos.
    func connectedPair(
        chunking: Chunking = .whole,
        stray: [UInt8] = []
    ) throws -> (client: ProtocolEndpoint, agent: ProtocolEndpoint, clientEvents: [ProtocolEndpoint.Event]) {
        var client = ProtocolEndpoint(hello: Self.clientHello, preambleLimit: ProtocolConstants.preambleScanLimit)
        var agent = ProtocolEndpoint(hello: Self.agentHello, preambleLimit: 0)
        let toAgent = client.start()
        let toClient = stray + agent.start()
        var agentEvents: [ProtocolEndpoint.Event] = []
        for chunk in chunking.split(toAgent) { agentEvents += try agent.receive(chunk) }
        var clientEvents: [ProtocolEndpoint.Event] = []
        for chunk in chunking.split(toClient) { clientEvents += try client.receive(chunk) }
        #expect(agentEvents.count == 1)
        return (client, agent, clientEvents)
    }

    @Test("hellos negotiate the highest common version and compression", arguments: Chunking.allCases)
    func handshake(chunking: Chunking) throws {
        let (client, agent, events) = try connectedPair(chunking: chunking)
        guard case .ready(let negotiation) = events.last else {
            Issue.record("no ready event: \(events)")
            return
        }
        #expect(negotiation.version == 1)
        #expect(negotiation.compression)
        #expect(negotiation.peer.scheduler == "slurm")
        #expect(client.negotiation != nil && agent.negotiation != nil)
    }

    @Test("messages flow both ways after the hello, compressed", arguments: Chunking.allCases)
    func messagesFlow(chunking: Chunking) throws {
        var (client, agent, _) = try connectedPair()
        var upstream: [UInt8] = []
        for message in sampleMessages() where message.frameType != .hello {
            try client.encode(message, channel: 3, into: &upstream)
        }
        var received: [Message] = []
        for chunk in chunking.split(upstream, seed: 99) {
            for event in try agent.receive(chunk) {
                if case .message(let channel, let message) = event {
                    #expect(channel == 3)
                    received.append(message)
                }
            }
        }
        #expect(received == sampleMessages().filter { $0.frameType != .hello })
        let reply = try agent.encode(.pong(Pong(nonce: 5)))
        #expect(try client.receive(reply) == [.message(channel: 0, .pong(Pong(nonce: 5)))])
    }

    @Test("login-shell noise before the agent's magic is handed back as stray bytes", arguments: Chunking.allCases)
    func strayBytesBeforeMagic(chunking: Chunking) throws {
        let banner = Array("Welcome to Gadi!\r\nLoading module intel/2023\n\u{1B}[1mnote\u{1B}[0m\n".utf8)
        let (_, _, events) = try connectedPair(chunking: chunking, stray: banner)
        let stray = events.compactMap { event -> [UInt8]? in
            if case .stray(let bytes) = event { return bytes }
            return nil
        }
        #expect(stray == [banner])
        #expect(EscapedBytes(banner).description.contains("\\x1b[1mnote"))
    }

    @Test("past the scan limit the client fails and shows the first bytes")
    func preambleNotFound() throws {
        var client = ProtocolEndpoint(hello: Self.clientHello, preambleLimit: 1000)
        let noise = Array(repeating: UInt8(ascii: "x"), count: 600)
        #expect(try client.receive(noise) == [])
        #expect {
            try client.receive(noise)
        } throws: { error in
            guard case ProtocolError.preambleNotFound(let first, let scanned) = error else { return false }
            return scanned == 1200 && first.prefix(3) == [120, 120, 120]
        }
    }

    @Test("a stream that ends before the magic says what it saw")
    func endsBeforeMagic() throws {
        var client = ProtocolEndpoint(hello: Self.clientHello, preambleLimit: 1000)
        _ = try client.receive(Array("bash: qxub-agent: command not found\n".utf8))
        #expect {
            try client.finish()
        } throws: { error in
            guard case ProtocolError.preambleNotFound(let first, _) = error else { return false }
            return String(decoding: first, as: UTF8.self).contains("command not found")
        }
        let silent = ProtocolEndpoint(hello: Self.clientHello, preambleLimit: 1000)
        #expect(throws: ProtocolError.endedBeforeHello) { try silent.finish() }
    }

    @Test("the agent accepts no stray bytes: a bad magic is an error at the first wrong byte")
    func agentIsStrict() throws {
        var agent = ProtocolEndpoint(hello: Self.agentHello, preambleLimit: 0)
        #expect(try agent.receive([0x89, 0x51]) == [])
        #expect(throws: ProtocolError.badMagic(received: [0x89, 0x51, 0x00])) { try agent.receive([0x00]) }
    }

    @Test("the first frame must be a hello")
    func helloFirst() throws {
        var agent = ProtocolEndpoint(hello: Self.agentHello, preambleLimit: 0)
        var encoder = FrameEncoder()
        let bytes = ProtocolConstants.magic + (try encoder.encode(Message.ping(Ping(nonce: 1)).frame()))
        #expect(throws: ProtocolError.expectedHello(got: .ping)) { try agent.receive(bytes) }
    }

    @Test("versions that do not overlap are refused, naming both ranges")
    func versionMismatch() throws {
        var old = ProtocolEndpoint(hello: Hello(versions: 1...1, software: "qxub 0.1.0"), preambleLimit: 100)
        var new = ProtocolEndpoint(hello: Hello(versions: 3...4, software: "qxub-agent 9.0.0"), preambleLimit: 0)
        let expected = ProtocolError.versionMismatch(local: 1...1, remote: 3...4, remoteSoftware: "qxub-agent 9.0.0")
        #expect(throws: expected) { try old.receive(new.start()) }
        #expect(
            expected.description
                == "protocol versions do not overlap: this side speaks 1-1, the peer (qxub-agent 9.0.0) speaks 3-4"
        )
    }

    @Test("without the deflate capability on both sides nothing is compressed")
    func noCompressionWithoutCapability() throws {
        var client = ProtocolEndpoint(hello: Hello(software: "old", capabilities: []), preambleLimit: 100)
        var agent = ProtocolEndpoint(hello: Self.agentHello, preambleLimit: 0)
        _ = try agent.receive(client.start())
        let events = try client.receive(agent.start())
        guard case .ready(let negotiation) = events.last else {
            Issue.record("not ready")
            return
        }
        #expect(!negotiation.compression)
        let frame = try agent.encode(
            .output(Output(stream: .stdout, offset: 0, data: Array(repeating: 65, count: 1000)))
        )
        #expect(frame[5] == 0)
    }

    @Test("a peer announcing a tiny maximum frame size is refused")
    func tinyMaxPayload() throws {
        var client = ProtocolEndpoint(hello: Self.clientHello, preambleLimit: 100)
        var agent = ProtocolEndpoint(hello: Hello(software: "agent", maxPayload: 100), preambleLimit: 0)
        let minimum = ProtocolConstants.minimumMaxPayload
        #expect(
            throws: ProtocolError.malformedPayload(
                type: .hello,
                reason: "the peer accepts only 100-byte frames; at least \(minimum) are needed"
            )
        ) { try client.receive(agent.start()) }
    }

    @Test("a bad payload after the hello is a recoverable event naming the request id")
    func malformedPayloadIsRecoverable() throws {
        var (client, agent, _) = try connectedPair()
        // submit { 2: spec { 11: resources { 1: 0 } }, 1: 12 }: a zero resource, and field 1 stands second.
        let wire = try client.encode(.unknown(.submit, requestID: 0))
        var frame: [UInt8] = []
        FrameHeader(length: 8, type: .submit, flags: [], channel: 0).write(into: &frame)
        frame += bytes(hex: "1204 5a020800 080c")
        _ = wire
        var events: [ProtocolEndpoint.Event] = []
        try agent.receive(frame) { events.append($0) }
        guard case .malformed(_, .submit, let requestID, _) = events.first else {
            Issue.record("expected a malformed event, got \(events)")
            return
        }
        #expect(requestID == 12)
        // The session goes on.
        let more = try agent.receive(try client.encode(.ping(Ping(nonce: 2))))
        #expect(more == [.message(channel: 0, .ping(Ping(nonce: 2)))])
    }

    @Test("events before a fatal frame are delivered before the error")
    func eventsBeforeFatalError() throws {
        var (client, agent, _) = try connectedPair()
        var bytes = try client.encode(.ping(Ping(nonce: 1)))
        FrameHeader(length: .max, type: .output, flags: [], channel: 1).write(into: &bytes)
        var events: [ProtocolEndpoint.Event] = []
        #expect(
            throws: ProtocolError.frameTooLarge(
                declared: Int(UInt32.max),
                maximum: Int(Self.agentHello.maxPayload)
            )
        ) { try agent.receive(bytes) { events.append($0) } }
        #expect(events == [.message(channel: 0, .ping(Ping(nonce: 1)))])
    }
}
