import QxubProtocol
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// The agent's side of one session: reads requests from `input`, writes answers to `output`.
///
/// It runs on an ``EventLoop`` and never blocks: reads happen whenever bytes arrive, writes whenever the
/// pipe has room, so a slow reader on the client's side can never stop the agent from reading.
/// The session ends when the client says goodbye or closes its end (the agent never outlives its client),
/// or on a protocol error, which is reported on stderr and, when possible, to the client.
package final class AgentSession {
    /// Why a session ended.
    package enum Ending: Equatable, Sendable {
        /// The client said goodbye or closed its end.
        case clientClosed
        /// The client broke the protocol.
        case protocolError(ProtocolError)
        /// A system call failed.
        case systemError(SystemError)

        /// The agent's exit status: 0, 2 for a protocol error, 1 for a system error.
        package var exitStatus: Int32 {
            switch self {
            case .clientClosed: 0
            case .protocolError: 2
            case .systemError: 1
            }
        }
    }

    package let loop: EventLoop
    private let input: Int32
    private let output: Int32
    private var endpoint: ProtocolEndpoint
    private let outbox: OutboxWriter
    private var readBuffer = [UInt8](repeating: 0, count: 64 * 1024)
    private var handlers: [AgentRequestHandler] = []
    package private(set) var ending: Ending?
    /// Called once when the session ends (before the loop stops).
    package var onEnd: ((Ending) -> Void)?

    /// Bytes queued for the client and not yet written; producers of job output hold back above a limit.
    package var pendingOutputBytes: Int { outbox.pendingBytes }

    /// Seconds of silence from a client that promised heartbeats after which the session ends: a client
    /// whose laptop died must not leave an agent behind on the login node.
    package var silenceLimit: Double = 90
    private var lastHeard: Double

    /// Above this many bytes queued for the client the session stops reading requests (a client that
    /// sends and never reads must not grow the agent without bound); it reads again at the low-water mark.
    package static let outboxHighWater = 4 << 20
    package static let outboxLowWater = 1 << 20
    /// Reading is paused until the outbox drains to ``outboxLowWater``.
    private var readingPaused = false
    /// The outbox's progress at the last silence check: a client that reads is alive even when the agent,
    /// paused, does not read its heartbeats.
    private var writtenAtLastCheck = 0

    package init(loop: EventLoop, input: Int32, output: Int32, hello: Hello) {
        self.loop = loop
        self.input = input
        self.output = output
        self.endpoint = ProtocolEndpoint(hello: hello, preambleLimit: 0)
        self.lastHeard = loop.now
        self.outbox = OutboxWriter(loop: loop, fd: output)
        outbox.onDrained = { [unowned self] in
            for handler in handlers { handler.outputDrained(self) }
            if ending != nil { loop.stop() }
        }
        outbox.lowWaterMark = Self.outboxLowWater
        outbox.onLowWater = { [unowned self] in
            guard readingPaused, ending == nil else { return }
            readingPaused = false
            loop.setReadable(input) { [unowned self] in self.readAvailable() }
        }
        outbox.onError = { [unowned self] error in
            // The client went away: nothing left to tell it.
            end(error.errno == EPIPE ? .clientClosed : .systemError(error))
        }
    }

    private func watchForSilence() {
        loop.schedule(after: min(15, silenceLimit / 3)) { [weak self] in
            guard let self, self.ending == nil else { return }
            if self.outbox.bytesWritten != self.writtenAtLastCheck {
                self.writtenAtLastCheck = self.outbox.bytesWritten
                self.lastHeard = max(self.lastHeard, self.loop.now)
            }
            if self.loop.now - self.lastHeard > self.silenceLimit {
                try? FileDescriptor.writeAll(
                    2,
                    "qxub-agent: no word from the client for \(Int(self.silenceLimit)) s; ending the session\n"
                )
                return self.end(.clientClosed)
            }
            self.watchForSilence()
        }
    }

    /// Adds a handler for requests beyond the session basics (jobs, status, cancel).
    package func register(_ handler: AgentRequestHandler) {
        handlers.append(handler)
    }

    /// Starts reading, then writes the magic and hello.
    ///
    /// The reader comes first: writing the hello can end the session (a client that is already gone), and
    /// ending it stops the reading; a reader registered after that would poll a dead stdin forever.
    package func start() throws {
        try FileDescriptor.setNonBlocking(input)
        try FileDescriptor.setNonBlocking(output)
        loop.setReadable(input) { [unowned self] in self.readAvailable() }
        enqueue(endpoint.start())
    }

    /// Sends a message to the client on `channel`.
    package func send(_ message: Message, channel: UInt32 = 0) {
        guard ending == nil else { return }
        do {
            var bytes: [UInt8] = []
            try endpoint.encode(message, channel: channel, into: &bytes)
            enqueue(bytes)
        } catch {
            end(.protocolError(error))
        }
    }

    /// Answers request `requestID` with an error.
    package func sendError(requestID: UInt32, code: ErrorCode, message: String, hint: String = "") {
        send(.error(ErrorMessage(requestID: requestID, code: code, message: message, hint: hint)))
    }

    /// The negotiated terms, once the client's hello has arrived.
    package var negotiation: Negotiation? { endpoint.negotiation }

    // MARK: - Reading

    private func readAvailable() {
        // An ended session reads nothing more; a reader still registered would be called again at once.
        guard ending == nil, !readingPaused else { return loop.setReadable(input, nil) }
        while ending == nil {
            if outbox.pendingBytes > Self.outboxHighWater {
                // The client does not read what it asked for: stop taking requests until it does.
                readingPaused = true
                return loop.setReadable(input, nil)
            }
            let outcome: FileDescriptor.ReadResult
            do {
                outcome = try readBuffer.withUnsafeMutableBytes { try FileDescriptor.read(input, into: $0) }
            } catch let error as SystemError {
                return end(.systemError(error))
            } catch {
                return end(.systemError(SystemError("read", "stdin", errno: EIO)))
            }
            switch outcome {
            case .wouldBlock:
                return
            case .endOfFile:
                do {
                    try endpoint.finish()
                    end(.clientClosed)
                } catch {
                    end(.protocolError(error))
                }
                return
            case .bytes(let count):
                lastHeard = loop.now
                // Every event decoded before a bad frame is handled first: a ping just before garbage
                // still gets its pong. (Handling happens after decoding: replies use the same endpoint.)
                var events: [ProtocolEndpoint.Event] = []
                var failure: ProtocolError?
                do {
                    try endpoint.receive(readBuffer[0..<count]) { events.append($0) }
                } catch {
                    failure = error
                }
                for event in events where ending == nil { handle(event) }
                if let failure {
                    // Tell the client what it did wrong, if it can still understand us; then stop.
                    if endpoint.negotiation != nil {
                        sendError(requestID: 0, code: .malformedRequest, message: failure.description)
                    }
                    return end(.protocolError(failure))
                }
                if ending != nil { return }
            }
        }
    }

    private func handle(_ event: ProtocolEndpoint.Event) {
        switch event {
        case .stray:
            break  // The agent scans strictly; it never reports stray bytes.
        case .ready(let negotiation):
            if negotiation.peer.capabilities.contains(ProtocolConstants.capabilityHeartbeat) { watchForSilence() }
            for handler in handlers { handler.sessionReady(self) }
        case .message(let channel, let message):
            handle(message, channel: channel)
        case .malformed(_, let type, let requestID, let error):
            // The framing is intact: answer the request and carry on. Malformed replies are dropped.
            if Message.isRequest(type) {
                sendError(
                    requestID: requestID,
                    code: .malformedRequest,
                    message: error.description,
                    hint: "this is a bug in the client: please report it"
                )
            }
        }
    }

    private func handle(_ message: Message, channel: UInt32) {
        switch message {
        case .ping(let ping):
            send(.pong(ping))
        case .pong:
            for handler in handlers { _ = handler.handle(message, channel: channel, session: self) }
        case .goodbye:
            end(.clientClosed)
        case .hello:
            sendError(requestID: 0, code: .malformedRequest, message: "hello was sent twice")
        case .unknown(let type, let requestID):
            sendError(
                requestID: requestID,
                code: .unknownRequest,
                message: "this agent (\(QxubVersion.current)) does not know the request \(type)",
                hint: "install the agent that matches your qxub: `qxub agent install --platform NAME`"
            )
        case .terminalInput, .terminalResize:
            // Streams to a watched interactive job: never answered, not even when nothing takes them.
            for handler in handlers where handler.handle(message, channel: channel, session: self) { return }
        case _ where !Message.isRequest(message.frameType):
            break  // A reply or event from the client (an error, say) is never answered: no ping-pong of errors.
        default:
            for handler in handlers where handler.handle(message, channel: channel, session: self) { return }
            let requestID = message.requestID ?? 0
            sendError(
                requestID: requestID,
                code: .unknownRequest,
                message: "this agent does not handle \(message.frameType) messages",
                hint: "install the agent that matches your qxub: `qxub agent install --platform NAME`"
            )
        }
    }

    // MARK: - Writing

    private func enqueue(_ bytes: [UInt8]) {
        outbox.enqueue(bytes)
    }

    // MARK: - Ending

    /// Ends the session: stops reading, writes what is queued (so an error frame reaches the client), stops the loop.
    package func end(_ reason: Ending) {
        guard ending == nil else { return }
        ending = reason
        loop.setReadable(input, nil)
        for handler in handlers { handler.sessionEnded(self) }
        onEnd?(reason)
        if pendingOutputBytes == 0 {
            loop.stop()
        } else {
            // Give the queued bytes a bounded time to leave, then stop regardless.
            loop.schedule(after: 2) { [unowned self] in self.loop.stop() }
        }
    }
}

/// Something that handles requests beyond the session basics (jobs, status, cancel).
package protocol AgentRequestHandler: AnyObject {
    /// Handles `message`; returns false when it is not this handler's.
    func handle(_ message: Message, channel: UInt32, session: AgentSession) -> Bool
    func sessionReady(_ session: AgentSession)
    /// The outbox emptied: producers that held back may send more.
    func outputDrained(_ session: AgentSession)
    func sessionEnded(_ session: AgentSession)
}

extension AgentRequestHandler {
    package func sessionReady(_ session: AgentSession) {}
    package func outputDrained(_ session: AgentSession) {}
    package func sessionEnded(_ session: AgentSession) {}
}

extension Message {
    /// The request id a reply must carry, for messages that are requests.
    package var requestID: UInt32? {
        switch self {
        case .submit(let value): value.requestID
        case .watch(let value): value.requestID
        case .unwatch(let value): value.requestID
        case .cancel(let value): value.requestID
        case .statusQuery(let value): value.requestID
        case .historyQuery(let value): value.requestID
        case .unknown(_, let requestID): requestID
        default: nil
        }
    }
}
