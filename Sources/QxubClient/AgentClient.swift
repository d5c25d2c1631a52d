import QxubProtocol

/// Where the typed client's requests go: an ``AgentConnection``, or a test's recorder.
package protocol AgentTransport: AnyObject {
    func send(_ message: Message, channel: UInt32)
}

extension AgentConnection: AgentTransport {}

/// The typed requests of one agent session (`submit`, `watch`, `unwatch`, `cancel`, `status`, `history`,
/// `ping`): the only code that builds requests and reads replies.
///
/// Every request gets an id of its own and its reply is matched to it by that id (a pong by its nonce), never
/// by its type: a late reply to a request whose caller stopped waiting is dropped, not taken as the answer
/// to the next one. Job streams (output, state, end) arrive by channel through ``onStream``.
package final class AgentClient {
    /// A job stream's message on a channel: `.output`, `.jobState` or `.jobEnd`.
    package var onStream: (UInt32, Message) -> Void = { _, _ in }
    /// A message that answers no request of ours (an error without a known request id, say).
    package var onUnmatched: (Message) -> Void = { _ in }

    private enum Pending {
        case submit((Result<Submitted, ErrorMessage>) -> Void)
        case watch(channel: UInt32, onError: (ErrorMessage) -> Void)
        /// No answer is needed; one that comes is dropped.
        case unwatch
        case cancel((Result<CancelResult, ErrorMessage>) -> Void)
        case status(asked: Int, collected: [JobStatus], (Result<[JobStatus], ClientError>) -> Void)
        case history(limit: Int, collected: [HistoryEntry], (Result<[HistoryEntry], ClientError>) -> Void)
        /// Its caller stopped waiting: the reply, when it comes, is dropped.
        case abandoned
    }

    private let transport: AgentTransport
    private var nextRequest: UInt32 = 1
    /// Our pings' nonces have the top bit set: the heartbeat's (milliseconds of uptime) never do.
    private var nextNonce: UInt64 = 1 << 63
    private var pending: [UInt32: Pending] = [:]
    private var pings: [UInt64: () -> Void] = [:]

    package init(transport: AgentTransport) {
        self.transport = transport
    }

    /// Requests sent and not yet answered (or abandoned).
    package var outstanding: Int { pending.count + pings.count }

    // MARK: - Requests

    @discardableResult
    package func submit(
        _ spec: JobSpec,
        dryRun: Bool = false,
        token: String = "",
        reply: @escaping (Result<Submitted, ErrorMessage>) -> Void
    ) -> UInt32 {
        let id = take(.submit(reply))
        transport.send(.submit(Submit(requestID: id, spec: spec, dryRun: dryRun, token: token)), channel: 0)
        return id
    }

    /// Streams job `jobID` on `channel` from the offsets; `onError` hears a refusal (an unknown job).
    @discardableResult
    package func watch(
        jobID: String,
        channel: UInt32,
        stdoutOffset: UInt64 = 0,
        stderrOffset: UInt64 = 0,
        joblog: Bool = false,
        stdoutTail: UInt64 = 0,
        onError: @escaping (ErrorMessage) -> Void
    ) -> UInt32 {
        let id = take(.watch(channel: channel, onError: onError))
        var watch = Watch(
            requestID: id,
            jobID: jobID,
            stdoutOffset: stdoutOffset,
            stderrOffset: stderrOffset,
            joblog: joblog
        )
        watch.stdoutTail = stdoutTail
        transport.send(.watch(watch), channel: channel)
        return id
    }

    /// Bytes typed for the interactive job followed on `channel` (not answered).
    package func terminalInput(_ data: [UInt8], channel: UInt32) {
        transport.send(.terminalInput(TerminalInput(data: data)), channel: channel)
    }

    /// The new size of our terminal, for the interactive job followed on `channel` (not answered).
    package func terminalResize(rows: UInt16, columns: UInt16, channel: UInt32) {
        transport.send(.terminalResize(TerminalResize(rows: rows, columns: columns)), channel: channel)
    }

    /// Stops the stream on `channel` (the agent keeps the job's files; a later watch resumes from offsets).
    @discardableResult
    package func unwatch(jobID: String, channel: UInt32) -> UInt32 {
        let id = take(.unwatch)
        transport.send(.unwatch(JobRequest(requestID: id, jobID: jobID)), channel: channel)
        return id
    }

    @discardableResult
    package func cancel(jobID: String, reply: @escaping (Result<CancelResult, ErrorMessage>) -> Void) -> UInt32 {
        let id = take(.cancel(reply))
        transport.send(.cancel(JobRequest(requestID: id, jobID: jobID)), channel: 0)
        return id
    }

    /// The status of `jobIDs` (one request; the agent may answer in several reports, see ``StatusReport/more``);
    /// with `usage`, also the scheduler's records of what finished jobs used (``StatusQuery/usage``).
    @discardableResult
    package func status(
        _ jobIDs: [String],
        usage: Bool = false,
        reply: @escaping (Result<[JobStatus], ClientError>) -> Void
    ) -> UInt32 {
        let id = take(.status(asked: jobIDs.count, collected: [], reply))
        transport.send(.statusQuery(StatusQuery(requestID: id, jobIDs: jobIDs, usage: usage)), channel: 0)
        return id
    }

    /// The agent's record of submissions on its host, newest first.
    @discardableResult
    package func history(
        limit: Int,
        reply: @escaping (Result<[HistoryEntry], ClientError>) -> Void
    ) -> UInt32 {
        let id = take(.history(limit: limit, collected: [], reply))
        transport.send(.historyQuery(HistoryQuery(requestID: id, limit: UInt32(clamping: limit))), channel: 0)
        return id
    }

    /// A ping; `reply` runs when its pong comes.
    @discardableResult
    package func ping(reply: @escaping () -> Void) -> UInt64 {
        let nonce = nextNonce
        nextNonce &+= 1
        pings[nonce] = reply
        transport.send(.ping(Ping(nonce: nonce)), channel: 0)
        return nonce
    }

    /// The caller no longer waits for request `id` (it timed out): its reply, if it comes, is dropped.
    package func abandon(_ id: UInt32) {
        if pending[id] != nil { pending[id] = .abandoned }
    }

    package func abandonPing(_ nonce: UInt64) {
        pings[nonce] = nil
    }

    // MARK: - Replies

    /// Routes a message from the agent to the request it answers, or to the job stream of its channel.
    package func receive(_ message: Message, channel: UInt32) {
        switch message {
        case .output, .jobState, .jobEnd:
            // The stream flows: its watch was accepted and can no longer be refused.
            for (id, entry) in pending {
                if case .watch(let watched, _) = entry, watched == channel { pending[id] = nil }
            }
            onStream(channel, message)
        case .submitted(let submitted):
            guard case .submit(let reply)? = claim(submitted.requestID, message) else { return }
            reply(.success(submitted))
        case .cancelResult(let result):
            guard case .cancel(let reply)? = claim(result.requestID, message) else { return }
            reply(.success(result))
        case .statusReport(let report):
            guard case .status(let asked, var collected, let reply)? = claim(report.requestID, message) else { return }
            collected += report.jobs
            if collected.count > asked {
                reply(.failure(Self.tooMany("statuses", collected.count, asked)))
            } else if report.more {
                pending[report.requestID] = .status(asked: asked, collected: collected, reply)
            } else {
                reply(.success(collected))
            }
        case .historyReport(let report):
            guard case .history(let limit, var collected, let reply)? = claim(report.requestID, message) else {
                return
            }
            collected += report.entries
            if collected.count > max(limit, 1) {
                reply(.failure(Self.tooMany("history entries", collected.count, limit)))
            } else if report.more {
                pending[report.requestID] = .history(limit: limit, collected: collected, reply)
            } else {
                reply(.success(collected))
            }
        case .pong(let pong):
            if let reply = pings.removeValue(forKey: pong.nonce) { reply() }
        case .error(let error):
            guard let entry = claim(error.requestID, message) else { return }
            switch entry {
            case .submit(let reply): reply(.failure(error))
            case .watch(_, let onError): onError(error)
            case .cancel(let reply): reply(.failure(error))
            case .status(_, _, let reply): reply(.failure(ClientError(error)))
            case .history(_, _, let reply): reply(.failure(ClientError(error)))
            case .unwatch, .abandoned: break
            }
        case .unknown(_, let requestID):
            // A reply type this build does not know: it answers (and ends) its request, but says nothing.
            _ = claim(requestID, message)
        default:
            onUnmatched(message)
        }
    }

    /// Takes request `id`'s entry out of the pending ones; a message for no request of ours goes to
    /// ``onUnmatched``, a reply for an abandoned one is dropped.
    private func claim(_ id: UInt32, _ message: Message) -> Pending? {
        guard let entry = pending.removeValue(forKey: id) else {
            onUnmatched(message)
            return nil
        }
        if case .abandoned = entry { return nil }
        if case .unwatch = entry { return nil }
        return entry
    }

    private func take(_ entry: Pending) -> UInt32 {
        let id = nextRequest
        nextRequest &+= 1
        if nextRequest == 0 { nextRequest = 1 }
        pending[id] = entry
        return id
    }

    /// A reply larger than its request allows (a hostile or broken agent).
    private static func tooMany(_ what: String, _ count: Int, _ asked: Int) -> ClientError {
        ClientError(
            "the agent sent \(count) \(what) for a request of \(asked)",
            hint: "the agent does not match this qxub: `qxub agent install` installs the one that does",
            exitCode: ExitCodes.unavailable
        )
    }
}
