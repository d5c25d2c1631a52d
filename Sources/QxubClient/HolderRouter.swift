import QxubProtocol

/// The session holder's bookkeeping as data: which client asked what and follows which job over the one
/// agent session. Messages in, messages out (``Action``); no I/O, so every rule is a table in the tests.
///
/// Each client numbers its requests and channels from 1 as if it had the agent to itself (the client code
/// is the same as for a direct session). The router gives every request and every watched channel a number
/// of its own on the agent's session, and maps the agent's replies and job events back: each client gets
/// exactly its own, under its own numbers. Replies to a client that has gone are dropped.
package struct HolderRouter {
    /// A local connection to the holder (its number, chosen by the holder).
    package typealias Client = Int

    /// A message to send.
    package enum Action: Hashable, Sendable {
        case toAgent(Message, channel: UInt32)
        case toClient(Client, Message, channel: UInt32)
    }

    /// Who waits for a request's reply: a client under its own id, or nobody (the client left).
    private struct Asker: Hashable {
        var client: Client?
        var requestID: UInt32
    }

    /// A channel on the agent's session: whose, under which of its channel numbers, which job.
    private struct Stream: Hashable {
        var client: Client
        var channel: UInt32
        var jobID: String
    }

    private var nextRequest: UInt32 = 1
    private var nextChannel: UInt32 = 1
    private var requests: [UInt32: Asker] = [:]
    private var streams: [UInt32: Stream] = [:]
    /// The clients connected now.
    package private(set) var clients: Set<Client> = []

    package init() {}

    /// No client is connected (and so no job is followed for one).
    package var isIdle: Bool { clients.isEmpty }

    /// Requests forwarded whose (last) reply has not come yet.
    package var outstandingRequests: Int { requests.count }

    /// Jobs followed on the agent's session.
    package var followedJobs: Int { streams.count }

    /// A client connected (its hello was answered).
    package mutating func clientJoined(_ client: Client) {
        clients.insert(client)
    }

    /// A message from a client, on that client's `channel`.
    package mutating func fromClient(_ client: Client, _ message: Message, channel: UInt32) -> [Action] {
        switch message {
        case .ping(let ping):
            // Answered here: the client's heartbeat is about the holder; the holder keeps its own with the agent.
            return [.toClient(client, .pong(ping), channel: 0)]
        case .submit(var submit):
            submit.requestID = take(client, submit.requestID)
            return [.toAgent(.submit(submit), channel: 0)]
        case .cancel(var request):
            request.requestID = take(client, request.requestID)
            return [.toAgent(.cancel(request), channel: 0)]
        case .statusQuery(var query):
            query.requestID = take(client, query.requestID)
            return [.toAgent(.statusQuery(query), channel: 0)]
        case .historyQuery(var query):
            query.requestID = take(client, query.requestID)
            return [.toAgent(.historyQuery(query), channel: 0)]
        case .watch(var watch):
            let agentChannel = streamChannel(client, channel) ?? newChannel()
            streams[agentChannel] = Stream(client: client, channel: channel, jobID: watch.jobID)
            watch.requestID = take(client, watch.requestID)
            return [.toAgent(.watch(watch), channel: agentChannel)]
        case .unwatch(var request):
            guard let agentChannel = streamChannel(client, channel) else {
                // Nothing followed there: the agent would find nothing to stop either.
                return []
            }
            request.requestID = take(client, request.requestID)
            return [.toAgent(.unwatch(request), channel: agentChannel)]
        case .terminalInput, .terminalResize:
            // Streamed to the job the client follows on that channel; never answered.
            guard let agentChannel = streamChannel(client, channel) else { return [] }
            return [.toAgent(message, channel: agentChannel)]
        case .unknown(let type, let requestID):
            // Its payload is not kept, so it cannot be passed on: answered as the agent answers a type it
            // does not know.
            return [
                .toClient(
                    client,
                    .error(
                        ErrorMessage(
                            requestID: requestID,
                            code: .unknownRequest,
                            message: "the session holder does not know \(type) requests"
                        )
                    ),
                    channel: 0
                )
            ]
        case .hello, .goodbye, .pong, .error, .submitted, .cancelResult, .statusReport, .historyReport, .output,
            .jobState, .jobEnd:
            // Not requests: nothing to pass on (the holder closes a client that says goodbye).
            return []
        }
    }

    /// A request of a client's that did not decode: answered here, as the agent would.
    package func malformed(_ client: Client, type: FrameType, requestID: UInt32, error: ProtocolError) -> [Action] {
        guard Message.isRequest(type) else { return [] }
        let message = ErrorMessage(requestID: requestID, code: .malformedRequest, message: "\(error)")
        return [.toClient(client, .error(message), channel: 0)]
    }

    /// A message from the agent, on the agent session's `channel`.
    package mutating func fromAgent(_ message: Message, channel: UInt32) -> [Action] {
        switch message {
        case .output, .jobState, .jobEnd:
            guard let stream = streams[channel] else { return [] }
            return [.toClient(stream.client, message, channel: stream.channel)]
        case .submitted(var submitted):
            guard let asker = answer(submitted.requestID, last: true) else { return [] }
            submitted.requestID = asker.requestID
            return reply(asker, .submitted(submitted))
        case .cancelResult(var result):
            guard let asker = answer(result.requestID, last: true) else { return [] }
            result.requestID = asker.requestID
            return reply(asker, .cancelResult(result))
        case .statusReport(var report):
            guard let asker = answer(report.requestID, last: !report.more) else { return [] }
            report.requestID = asker.requestID
            return reply(asker, .statusReport(report))
        case .historyReport(var report):
            guard let asker = answer(report.requestID, last: !report.more) else { return [] }
            report.requestID = asker.requestID
            return reply(asker, .historyReport(report))
        case .error(var error):
            if error.requestID == 0 {
                // About the agent's session as a whole: every client's session.
                return clients.sorted().map { .toClient($0, .error(error), channel: 0) }
            }
            guard let asker = answer(error.requestID, last: true) else { return [] }
            error.requestID = asker.requestID
            return reply(asker, .error(error))
        case .unknown(let type, let requestID):
            // A reply type this build does not know ends its request; its content cannot be passed on.
            guard let asker = answer(requestID, last: true) else { return [] }
            return reply(asker, .unknown(type, requestID: asker.requestID))
        case .hello, .goodbye, .ping, .pong, .submit, .watch, .unwatch, .cancel, .statusQuery, .historyQuery,
            .terminalInput, .terminalResize:
            // The holder's own heartbeat's pongs, and what an agent never sends.
            return []
        }
    }

    /// A client's connection ended: the jobs it followed are no longer followed for it (the agent is told),
    /// and replies to its requests will be dropped.
    package mutating func clientLeft(_ client: Client) -> [Action] {
        clients.remove(client)
        for (id, asker) in requests where asker.client == client {
            requests[id] = Asker(client: nil, requestID: asker.requestID)
        }
        var actions: [Action] = []
        for (agentChannel, stream) in streams.sorted(by: { $0.key < $1.key }) where stream.client == client {
            streams[agentChannel] = nil
            let id = take(nil, 0)
            actions.append(.toAgent(.unwatch(JobRequest(requestID: id, jobID: stream.jobID)), channel: agentChannel))
        }
        return actions
    }

    /// The agent's session ended: nothing asked of it will be answered, nothing followed goes on.
    package mutating func agentLost() {
        requests = [:]
        streams = [:]
    }

    // MARK: - Numbers

    private mutating func take(_ client: Client?, _ requestID: UInt32) -> UInt32 {
        var id = nextRequest
        // Ids wrap after 2^32 requests; 0 means "no request", and one still waiting keeps its number.
        while id == 0 || requests[id] != nil { id &+= 1 }
        nextRequest = id &+ 1
        requests[id] = Asker(client: client, requestID: requestID)
        return id
    }

    private mutating func newChannel() -> UInt32 {
        var channel = nextChannel
        while channel == 0 || streams[channel] != nil { channel &+= 1 }
        nextChannel = channel &+ 1
        return channel
    }

    private func streamChannel(_ client: Client, _ channel: UInt32) -> UInt32? {
        streams.first { $0.value.client == client && $0.value.channel == channel }?.key
    }

    /// The asker of request `id`; its entry stays while more replies are to come.
    private mutating func answer(_ id: UInt32, last: Bool) -> Asker? {
        guard let asker = requests[id] else { return nil }
        if last { requests[id] = nil }
        return asker
    }

    private func reply(_ asker: Asker, _ message: Message) -> [Action] {
        guard let client = asker.client, clients.contains(client) else { return [] }
        return [.toClient(client, message, channel: 0)]
    }
}
