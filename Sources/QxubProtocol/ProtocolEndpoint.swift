/// One side of a qxub session as a state machine over bytes: no I/O, so it runs the same in tests, in
/// the agent and in the client.
///
/// ```
/// var endpoint = ProtocolEndpoint(hello: myHello, preambleLimit: 0)
/// write(endpoint.start())                          // magic + hello
/// for event in try endpoint.receive(bytesRead) { … } // .stray, .ready, .message
/// write(try endpoint.encode(.ping(Ping(nonce: 1))))
/// ```
package struct ProtocolEndpoint {
    /// Something the peer said, or learned about it.
    package enum Event: Hashable, Sendable {
        /// Bytes that came before the peer's magic (login-shell noise), to show as a warning.
        case stray([UInt8])
        /// Hellos exchanged; the session is usable.
        case ready(Negotiation)
        /// A message on a channel (never a hello).
        case message(channel: UInt32, Message)
        /// A frame whose payload did not decode. The framing is intact, so the session can go on: a
        /// receiver answers requests with a `malformed-request` error naming `requestID`.
        case malformed(channel: UInt32, type: FrameType, requestID: UInt32, error: ProtocolError)
    }

    private enum Phase {
        case awaitingMagic(PreambleScanner)
        case awaitingHello
        case ready(Negotiation)
    }

    package let localHello: Hello
    private var phase: Phase
    private var encoder = FrameEncoder()
    private var decoder = FrameDecoder()

    /// - Parameters:
    ///   - hello: what this side announces.
    ///   - preambleLimit: stray bytes tolerated before the peer's magic (the client: 64 KiB; the agent: 0).
    package init(hello: Hello, preambleLimit: Int) {
        self.localHello = hello
        self.phase = .awaitingMagic(PreambleScanner(limit: preambleLimit))
    }

    /// The agreed terms, once ``Event/ready(_:)`` has been delivered.
    package var negotiation: Negotiation? {
        if case .ready(let negotiation) = phase { return negotiation }
        return nil
    }

    /// The bytes this side sends first: the magic and its hello (never compressed).
    package mutating func start() -> [UInt8] {
        var bytes = ProtocolConstants.magic
        // A hello is far below the pre-hello limit, so this cannot fail.
        try? encoder.encode(Message.hello(localHello).frame(), into: &bytes)
        return bytes
    }

    /// Feeds bytes from the peer; returns what they said, in order.
    ///
    /// If the bytes end in a protocol error, the events decoded before it are lost to the caller; use
    /// ``receive(_:onEvent:)`` to act on every event before the error.
    package mutating func receive<Bytes: Sequence>(_ bytes: Bytes) throws(ProtocolError) -> [Event]
    where Bytes.Element == UInt8 {
        var events: [Event] = []
        try receive(bytes) { events.append($0) }
        return events
    }

    /// Feeds bytes from the peer and hands each event to `onEvent` as soon as it is decoded, so a ping
    /// followed by garbage still gets its pong before the session ends.
    package mutating func receive<Bytes: Sequence>(_ bytes: Bytes, onEvent: (Event) -> Void) throws(ProtocolError)
    where Bytes.Element == UInt8 {
        if case .awaitingMagic(var scanner) = phase {
            switch try scanner.feed(bytes) {
            case .needMore:
                phase = .awaitingMagic(scanner)
                return
            case .found(let stray, let remainder):
                if !stray.isEmpty { onEvent(.stray(stray)) }
                phase = .awaitingHello
                decoder.append(remainder)
            }
        } else {
            decoder.append(bytes)
        }
        while let frame = try decoder.decode() {
            switch phase {
            case .awaitingMagic:
                preconditionFailure("frames are only decoded after the magic")
            case .awaitingHello:
                guard frame.type == .hello else { throw .expectedHello(got: frame.type) }
                guard case .hello(let remote) = try Message(frame: frame) else { throw .expectedHello(got: frame.type) }
                let negotiation = try Negotiation(local: localHello, remote: remote)
                encoder.peerMaxPayload = negotiation.peerMaxPayload
                decoder.maxPayload = Int(localHello.maxPayload)
                if negotiation.compression {
                    try encoder.enableCompression()
                    try decoder.enableDecompression()
                }
                phase = .ready(negotiation)
                onEvent(.ready(negotiation))
            case .ready:
                do {
                    onEvent(.message(channel: frame.channel, try Message(frame: frame)))
                } catch {
                    onEvent(
                        .malformed(
                            channel: frame.channel,
                            type: frame.type,
                            requestID: Message.requestID(inPayload: frame.payload),
                            error: error
                        )
                    )
                }
            }
        }
    }

    /// Call when the peer's stream ends: throws if it ended early or mid-frame.
    package func finish() throws(ProtocolError) {
        switch phase {
        case .awaitingMagic(let scanner):
            if scanner.bytesSeen.isEmpty { throw .endedBeforeHello }
            if scanner.limit == 0 { throw .badMagic(received: Array(scanner.bytesSeen.prefix(64))) }
            throw .preambleNotFound(firstBytes: Array(scanner.bytesSeen.prefix(256)), scanned: scanner.bytesSeen.count)
        case .awaitingHello:
            try decoder.finish()
            throw .endedBeforeHello
        case .ready:
            try decoder.finish()
        }
    }

    /// Encodes a message for the peer (compressed when agreed and worth it).
    package mutating func encode(_ message: Message, channel: UInt32 = 0) throws(ProtocolError) -> [UInt8] {
        try encoder.encode(message.frame(channel: channel))
    }

    /// Appends an encoded message to `buffer`.
    package mutating func encode(
        _ message: Message,
        channel: UInt32 = 0,
        into buffer: inout [UInt8]
    ) throws(ProtocolError) {
        try encoder.encode(message.frame(channel: channel), into: &buffer)
    }

    /// The largest payload the peer accepts (before the hello: the pre-hello limit).
    package var peerMaxPayload: Int { encoder.peerMaxPayload }
}
