import QxubProtocol
import QxubSystem

/// Turns the session's job requests into typed calls on a ``JobService``, and their outcomes into replies.
///
/// The one place that knows request ids and error frames, so every request gets exactly one reply on
/// channel 0 (status and history: one series of split reports): `submit` → `submitted`, `cancel` and
/// `unwatch` → `cancel-result`, `status-query` → `status-report`s, `history-query` → `history-report`s, or
/// an `error` for any of them. A `watch` is answered by its stream on its own channel, or an `error`.
package final class JobHarness: AgentRequestHandler {
    private let service: JobService
    private let log: AgentLog

    package init(service: JobService, log: AgentLog) {
        self.service = service
        self.log = log
    }

    package func sessionReady(_ session: AgentSession) {
        let peer = session.negotiation?.peer
        if peer?.capabilities.contains(ProtocolConstants.capabilityVerbose) == true { log.mirrorToStderr = true }
        if let root = peer?.stateRoot, !root.isEmpty { service.useStateRoot(root) }
        service.start(sink: session)
        log.write(
            "session from \(peer?.software ?? "?") on \(peer?.hostname ?? "?"); scheduler \(service.defaultKind); state in \(service.stateRoot)"
        )
    }

    package func sessionEnded(_ session: AgentSession) {
        service.stop()
        log.write("session ended: \(session.ending.map { "\($0)" } ?? "?")")
    }

    package func outputDrained(_ session: AgentSession) {
        service.outputDrained()
    }

    package func handle(_ message: Message, channel: UInt32, session: AgentSession) -> Bool {
        switch message {
        case .submit(let request):
            let reply = replier(request.requestID, session) { (job: JobService.SubmittedJob) in
                [
                    .submitted(
                        Submitted(
                            requestID: request.requestID,
                            jobID: job.jobID,
                            backend: job.backend,
                            stateDirectory: job.stateDirectory,
                            script: job.script,
                            command: job.command,
                            warnings: job.warnings,
                            room: job.room,
                            quota: job.quota
                        )
                    )
                ]
            }
            service.submit(request.spec, token: request.token, dryRun: request.dryRun, reply: reply)
        case .watch(let request):
            // Accepted, the watch is answered by its stream on `channel`.
            let reply = replier(request.requestID, session) { (_: Void) in [] }
            do {
                try service.watch(
                    jobID: request.jobID,
                    channel: channel,
                    stdoutOffset: request.stdoutOffset,
                    stderrOffset: request.stderrOffset,
                    joblog: request.joblog,
                    stdoutTail: request.stdoutTail
                )
            } catch {
                reply(.failure(error))
            }
        case .unwatch(let request):
            let reply = replier(request.requestID, session) { (wasActive: Bool) in
                [.cancelResult(CancelResult(requestID: request.requestID, jobID: request.jobID, wasActive: wasActive))]
            }
            reply(.success(service.unwatch(channel: channel)))
        case .cancel(let request):
            let reply = replier(request.requestID, session) { (wasActive: Bool) in
                [.cancelResult(CancelResult(requestID: request.requestID, jobID: request.jobID, wasActive: wasActive))]
            }
            service.cancel(jobID: request.jobID, reply: reply)
        case .statusQuery(let query):
            let reply = replier(query.requestID, session) { [weak session] (jobs: [JobStatus]) in
                StatusReport.split(requestID: query.requestID, jobs: jobs, maxPayload: Self.replyBudget(session))
                    .map { .statusReport($0) }
            }
            service.status(jobIDs: query.jobIDs, usage: query.usage, reply: reply)
        case .terminalInput(let input):
            service.terminalInput(channel: channel, input.data)
        case .terminalResize(let resize):
            service.terminalResize(channel: channel, rows: resize.rows, columns: resize.columns)
        case .historyQuery(let query):
            let entries = service.history(limit: query.limit)
            for report in HistoryReport.split(
                requestID: query.requestID,
                entries: entries,
                maxPayload: Self.replyBudget(session)
            ) {
                session.send(.historyReport(report))
            }
        default:
            return false
        }
        return true
    }

    /// The reply to request `requestID`: the messages made from a success, or an `error` frame with the
    /// failure's code, message and hint.
    private func replier<Value>(
        _ requestID: UInt32,
        _ session: AgentSession,
        _ messages: @escaping (Value) -> [Message]
    ) -> AgentReply<Value> {
        AgentReply { [weak session] result in
            guard let session else { return }
            switch result {
            case .success(let value):
                for message in messages(value) { session.send(message) }
            case .failure(let error):
                session.sendError(requestID: requestID, code: error.code, message: error.message, hint: error.hint)
            }
        }
    }

    /// The largest payload of one report: the peer's maximum for a client that collects split replies,
    /// unbounded (one report, as before) for one that does not.
    private static func replyBudget(_ session: AgentSession?) -> Int {
        guard let negotiation = session?.negotiation,
            negotiation.peer.capabilities.contains(ProtocolConstants.capabilitySplitReplies)
        else { return .max }
        return negotiation.peerMaxPayload
    }
}
