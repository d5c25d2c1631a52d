import QxubProtocol
import QxubSystem

/// Short request/reply conversations with an agent: cancel, status, ping. One session each.
public final class AgentRequests {
    public let loop = EventLoop()
    public private(set) var connection: AgentConnection
    public private(set) var strayBytes: [UInt8] = []
    public private(set) var negotiation: Negotiation?
    private let endpoint: AgentEndpoint
    private var retriedStall = false
    /// Why the session ended, for the requests that come after.
    private var endedWith: ClientError?

    public init(endpoint: AgentEndpoint) throws(ClientError) {
        self.endpoint = endpoint
        // Requests are short and separated by pauses the caller chooses: no heartbeat promised.
        connection = try endpoint.connect(loop: loop, heartbeat: false)
    }

    /// Sends what `request` builds once the session is ready, and returns the first reply `accept` takes.
    public func ask<T>(
        timeout: Double = 120,
        _ request: @escaping (AgentConnection) -> [Message],
        accept: @escaping (Message) -> T?
    ) throws(ClientError) -> T {
        // A session that already ended answers nothing: say so at once instead of waiting out the timeout.
        if connection.isClosed {
            throw endedWith
                ?? ClientError("the session with \(connection.peerName) has ended", exitCode: ExitCodes.connectionLost)
        }
        var result: T?
        var failure: ClientError?
        let send = { [unowned self] in
            for message in request(connection) { connection.send(message) }
        }
        connection.onEvent = { [unowned self] event in
            switch event {
            case .stray(let bytes): strayBytes += bytes
            case .ready(let negotiation):
                self.negotiation = negotiation
                send()
            case .message(_, let message):
                if let value = accept(message) {
                    result = value
                    loop.stop()
                } else if case .error(let error) = message {
                    failure = ClientError(error)
                    loop.stop()
                }
            case .malformed(_, let type, _, let error) where !Message.isRequest(type):
                // A reply that does not decode is no answer: say so now rather than after the timeout.
                failure = ClientError(
                    "\(connection.peerName) sent a \(type) that does not decode: \(error)",
                    hint: "the agent does not match this qxub: `qxub agent install` installs the one that does",
                    exitCode: ExitCodes.unavailable
                )
                loop.stop()
            case .malformed: break
            }
        }
        connection.onClose = { [unowned self] error in
            failure =
                failure ?? error
                ?? ClientError("the agent closed the session without answering", exitCode: ExitCodes.unavailable)
            endedWith = failure
            loop.stop()
        }
        if negotiation != nil { send() }
        let timer = loop.schedule(after: timeout) { [unowned self] in
            failure = ClientError(
                "no answer from \(connection.peerName) in \(Int(timeout)) s",
                exitCode: ExitCodes.unavailable
            )
            loop.stop()
        }
        try? loop.run()
        loop.cancelTimer(timer)
        if let result { return result }
        if connection.stalled && !retriedStall {
            // A dead ssh master (the session never started): once more, through a fresh connection.
            retriedStall = true
            connection = try endpoint.reconnect(replacing: connection, heartbeat: false) { ClientLog.write($0) }
            return try ask(timeout: timeout, request, accept: accept)
        }
        throw failure ?? ClientError("no answer", exitCode: ExitCodes.unavailable)
    }

    public func close() { connection.close() }

    /// Cancels jobs; returns (job, outcome message) pairs.
    public func cancel(_ jobIDs: [String]) throws(ClientError) -> [(String, String)] {
        var outcomes: [(String, String)] = []
        for jobID in jobIDs {
            do {
                let result = try ask({ connection in
                    [.cancel(JobRequest(requestID: connection.requestID(), jobID: jobID))]
                }) { message -> CancelResult? in
                    if case .cancelResult(let result) = message { return result }
                    return nil
                }
                outcomes.append((jobID, result.wasActive ? "cancel requested" : "had already finished"))
            } catch {
                outcomes.append((jobID, "failed: \(error.message)"))
            }
        }
        return outcomes
    }

    /// The status of many jobs, in the order asked: one request per run of ids that fits a frame (one
    /// scheduler query each on the agent's side), each answered by one or more reports (``StatusReport/more``).
    public func status(_ jobIDs: [String]) throws(ClientError) -> [JobStatus] {
        // Before the hello the peer's maximum is unknown: the announced default is what every agent takes.
        let maxPayload = negotiation?.peerMaxPayload ?? ProtocolConstants.defaultMaxPayload
        var statuses: [JobStatus] = []
        statuses.reserveCapacity(jobIDs.count)
        for run in StatusQuery.runs(of: jobIDs, maxPayload: maxPayload) {
            let ids = Array(jobIDs[run])
            var requestID: UInt32 = 0
            var collected: [JobStatus] = []
            let answered = try ask({ connection in
                requestID = connection.requestID()
                return [.statusQuery(StatusQuery(requestID: requestID, jobIDs: ids))]
            }) { message -> [JobStatus]? in
                guard case .statusReport(let report) = message, report.requestID == requestID else { return nil }
                collected += report.jobs
                // More statuses than ids asked: a broken agent, not a reason to collect forever.
                return report.more && collected.count <= ids.count ? nil : collected
            }
            guard answered.count <= ids.count else { throw Self.tooMany("statuses", answered.count, ids.count) }
            statuses += answered
        }
        return statuses
    }

    /// The agent's own record of submissions on its host, newest first (one or more reports).
    public func history(limit: Int) throws(ClientError) -> [HistoryEntry] {
        var requestID: UInt32 = 0
        var collected: [HistoryEntry] = []
        let entries = try ask({ connection in
            requestID = connection.requestID()
            return [.historyQuery(HistoryQuery(requestID: requestID, limit: UInt32(clamping: limit)))]
        }) { message -> [HistoryEntry]? in
            guard case .historyReport(let report) = message, report.requestID == requestID else { return nil }
            collected += report.entries
            return report.more && collected.count <= limit ? nil : collected
        }
        guard entries.count <= max(limit, 1) else { throw Self.tooMany("history entries", entries.count, limit) }
        return entries
    }

    /// A reply larger than its request allows (a hostile or broken agent).
    private static func tooMany(_ what: String, _ count: Int, _ asked: Int) -> ClientError {
        ClientError(
            "the agent sent \(count) \(what) for a request of \(asked)",
            hint: "the agent does not match this qxub: `qxub agent install` installs the one that does",
            exitCode: ExitCodes.unavailable
        )
    }

    /// Round-trip times of `count` pings over this session, in seconds.
    public func pings(_ count: Int) throws(ClientError) -> [Double] {
        var times: [Double] = []
        for nonce in 0..<count {
            let start = MonotonicClock.now()
            _ = try ask({ _ in [.ping(Ping(nonce: UInt64(nonce)))] }) { message -> Bool? in
                if case .pong(let pong) = message, pong.nonce == UInt64(nonce) { return true }
                return nil
            }
            times.append(MonotonicClock.now() - start)
        }
        return times
    }
}
