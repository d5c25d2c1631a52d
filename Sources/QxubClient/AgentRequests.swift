import QxubProtocol
import QxubSystem

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Short request/reply conversations with an agent (cancel, status, history, ping) over one session, each
/// waited for in turn: the blocking face of ``AgentClient``, for commands that ask and print.
package final class AgentRequests {
    package let loop = EventLoop()
    package private(set) var connection: AgentConnection
    package private(set) var strayBytes: [UInt8] = []
    package private(set) var negotiation: Negotiation?
    private var client: AgentClient
    private var endpoint: AgentEndpoint
    private var retriedStall = false
    /// A request was sent again over a direct session after its holder's agent session stalled or ended
    /// (once per command: the direct path has its own retry for a hung ssh master).
    private var bypassedHolder = false
    /// While a request waits through a holder: the probe timer, the probes sent, and whether they found the
    /// holder's agent session stalled.
    private var probeTimer: Int?
    private var probes: [UInt32] = []
    private var holderStalled = false
    /// Why the session ended, for the requests that come after.
    private var endedWith: ClientError?
    /// A reply that did not decode: the agent does not match this qxub, so nothing it says is trusted after it.
    private var brokenWith: ClientError?
    /// Set while a request is waited for: how it ends (a reply, an error, the session's end).
    private var outcome: ClientError??

    package init(endpoint: AgentEndpoint) throws(ClientError) {
        self.endpoint = endpoint
        // Requests are short and separated by pauses the caller chooses: no heartbeat promised.
        connection = try endpoint.connect(loop: loop, heartbeat: false)
        client = AgentClient(transport: connection)
        wire()
    }

    package func close() { connection.close() }

    /// Cancels jobs; returns (job, outcome message) pairs.
    package func cancel(_ jobIDs: [String]) throws(ClientError) -> [(String, String)] {
        var outcomes: [(String, String)] = []
        for jobID in jobIDs {
            do {
                let result = try ask { client, reply in
                    client.cancel(jobID: jobID) { reply($0.mapError { ClientError($0) }) }
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
    /// With `usage` (an agent with ``ProtocolConstants/capabilityUsage``: see ``agentReportsUsage()``), finished
    /// scheduler jobs come with the scheduler's records of what they used.
    package func status(_ jobIDs: [String], usage: Bool = false) throws(ClientError) -> [JobStatus] {
        // Before the hello the peer's maximum is unknown: the announced default is what every agent takes.
        try waitForReady()
        let maxPayload = negotiation?.peerMaxPayload ?? ProtocolConstants.defaultMaxPayload
        var statuses: [JobStatus] = []
        statuses.reserveCapacity(jobIDs.count)
        for run in StatusQuery.runs(of: jobIDs, maxPayload: maxPayload) {
            let ids = Array(jobIDs[run])
            statuses += try ask { client, reply in client.status(ids, usage: usage, reply: reply) }
        }
        return statuses
    }

    /// Whether the agent reports the scheduler's records of what jobs used (older agents do not).
    package func agentReportsUsage() throws(ClientError) -> Bool {
        try waitForReady()
        return negotiation?.peer.capabilities.contains(ProtocolConstants.capabilityUsage) == true
    }

    /// The agent's own record of submissions on its host, newest first (one or more reports).
    package func history(limit: Int) throws(ClientError) -> [HistoryEntry] {
        try ask { client, reply in client.history(limit: limit, reply: reply) }
    }

    /// What the agent would submit for `spec`, submitting nothing: where the job's state would live and the
    /// room there (``Submitted/room``).
    package func dryRun(_ spec: JobSpec) throws(ClientError) -> Submitted {
        try ask { client, reply in
            client.submit(spec, dryRun: true) { reply($0.mapError { ClientError($0) }) }
        }
    }

    /// Round-trip times of `count` pings over this session, in seconds.
    package func pings(_ count: Int) throws(ClientError) -> [Double] {
        var times: [Double] = []
        for _ in 0..<count {
            try waitForReady()
            let start = MonotonicClock.now()
            try askAbandoning { client, reply in
                let nonce = client.ping { reply(.success(())) }
                return { client.abandonPing(nonce) }
            }
            times.append(MonotonicClock.now() - start)
        }
        return times
    }

    // MARK: - Waiting

    private func wire() {
        connection.onEvent = { [unowned self] event in
            switch event {
            case .stray(let bytes): strayBytes += bytes
            case .ready(let negotiation):
                self.negotiation = negotiation
                loop.stop()
            case .message(let channel, let message):
                client.receive(message, channel: channel)
            case .malformed(_, let type, _, let error) where !Message.isRequest(type):
                // A reply that does not decode is no answer: say so now rather than after the timeout. It
                // breaks the session for every request after it too (it may have come before the request
                // was sent, in the same read as the hello).
                let failure = ClientError(
                    "\(connection.peerName) sent a \(type) that does not decode: \(error)",
                    hint: "the agent does not match this qxub: `qxub agent install` installs the one that does",
                    exitCode: ExitCodes.unavailable
                )
                brokenWith = brokenWith ?? failure
                end(failure)
            case .malformed: break
            }
        }
        connection.onClose = { [unowned self] error in
            let failure =
                error ?? ClientError("the agent closed the session without answering", exitCode: ExitCodes.unavailable)
            endedWith = endedWith ?? brokenWith ?? failure
            end(brokenWith ?? failure)
        }
        // An error that names no request of ours (a broken agent) still ends the wait, as before.
        client.onUnmatched = { [unowned self] message in
            if case .error(let error) = message { end(ClientError(error)) }
        }
    }

    /// Ends the current wait with `error` (nil: answered).
    private func end(_ error: ClientError?) {
        if outcome == nil { outcome = .some(error) }
        loop.stop()
    }

    /// Runs the loop until the session is ready (or ends, or `timeout` passes).
    private func waitForReady(timeout: Double = 120) throws(ClientError) {
        while negotiation == nil {
            try checkOpen()
            outcome = nil
            let timer = loop.schedule(after: timeout) { [unowned self] in
                end(
                    ClientError(
                        "no answer from \(connection.peerName) in \(Int(timeout)) s",
                        exitCode: ExitCodes.unavailable
                    )
                )
            }
            try? loop.run()
            loop.cancelTimer(timer)
            if negotiation != nil { return }
            if case .some(let failure?) = outcome {
                if connection.stalled && !retriedStall {
                    // A dead ssh master (the session never started): once more, through a fresh connection.
                    retriedStall = true
                    endedWith = nil
                    brokenWith = nil
                    connection = try endpoint.reconnect(replacing: connection, heartbeat: false) { ClientLog.write($0) }
                    client = AgentClient(transport: connection)
                    wire()
                    continue
                }
                throw failure
            }
        }
    }

    /// A session that already ended answers nothing: say so at once instead of waiting out the timeout.
    private func checkOpen() throws(ClientError) {
        if let brokenWith { throw brokenWith }
        if connection.isClosed {
            throw endedWith
                ?? ClientError("the session with \(connection.peerName) has ended", exitCode: ExitCodes.connectionLost)
        }
    }

    /// Sends what `request` asks of the client once the session is ready and waits for its reply (matched by
    /// request id: a late reply to an earlier request that timed out is dropped, never taken for this one).
    private func ask<T>(
        timeout: Double = 120,
        _ request: (AgentClient, @escaping (Result<T, ClientError>) -> Void) -> UInt32
    ) throws(ClientError) -> T {
        try askAbandoning(timeout: timeout) { client, reply in
            let id = request(client, reply)
            return { client.abandon(id) }
        }
    }

    /// As above; `request` returns what abandons the request when its wait ends without a reply.
    private func askAbandoning<T>(
        timeout: Double = 120,
        _ request: (AgentClient, @escaping (Result<T, ClientError>) -> Void) -> () -> Void
    ) throws(ClientError) -> T {
        try waitForReady(timeout: timeout)
        try checkOpen()
        var result: Result<T, ClientError>?
        outcome = nil
        holderStalled = false
        let abandon = request(client) { [unowned self] reply in
            result = reply
            end(nil)
        }
        if connection.viaHolder && !bypassedHolder { probeHolder(heardBefore: nil) }
        let timer = loop.schedule(after: timeout) { [unowned self] in
            end(
                ClientError(
                    "no answer from \(connection.peerName) in \(Int(timeout)) s",
                    exitCode: ExitCodes.unavailable
                )
            )
        }
        if result == nil { try? loop.run() }
        loop.cancelTimer(timer)
        stopProbing()
        if let result { return try result.get() }
        abandon()
        if connection.viaHolder, !bypassedHolder, brokenWith == nil, holderStalled || connection.isClosed {
            try bypassHolder()
            return try askAbandoning(timeout: timeout, request)
        }
        if case .some(let failure?) = outcome { throw failure }
        throw ClientError("no answer", exitCode: ExitCodes.unavailable)
    }

    // MARK: - Through a session holder

    /// The holder answers the hello and pings itself, so a hung ssh master under its agent session shows
    /// only as silence, which the holder notices after three heartbeats (30 s). So while a request waits
    /// for its reply, every half QXUB_HELLO_TIMEOUT a small request (the newest history entry) goes to the
    /// agent through the holder; when nothing at all has come back by the next tick, the agent session is
    /// stalled and the wait ends (after QXUB_HELLO_TIMEOUT, 20 s by default). A request that is merely slow
    /// (a busy scheduler) keeps waiting: the agent answers the probes meanwhile.
    private func probeHolder(heardBefore: Int?) {
        probeTimer = loop.schedule(after: endpoint.settings.timing.helloTimeout / 2) { [unowned self] in
            if let heardBefore, connection.bytesReceived == heardBefore {
                holderStalled = true
                return end(
                    ClientError(
                        "the session holder's agent session for \(connection.peerName) stalled",
                        exitCode: ExitCodes.connectionLost
                    )
                )
            }
            let heard = connection.bytesReceived
            probes.append(client.history(limit: 1) { _ in })
            probeHolder(heardBefore: heard)
        }
    }

    private func stopProbing() {
        if let probeTimer { loop.cancelTimer(probeTimer) }
        probeTimer = nil
        for probe in probes { client.abandon(probe) }
        probes = []
    }

    /// Leaves a holder whose agent session stalled, or ended with a request unanswered, for a direct session
    /// (whose hello timeout replaces a hung ssh master, see ``waitForReady(timeout:)``). A stalled holder is
    /// stopped, as one that does not answer its hello is: every qxub after this one would wait on it too, and
    /// its other clients reconnect and resume from their byte offsets. In a warm fork of that holder (no
    /// terminal) the request goes back to the qxub that asked, which runs it itself: replacing the hung master
    /// may prompt, and nothing was answered yet.
    private func bypassHolder() throws(ClientError) {
        bypassedHolder = true
        let holder = connection.processID
        ClientLog.write(
            "session holder for \(endpoint.platform.name) (pid \(holder)): "
                + (holderStalled ? "its agent session stalled; stopped" : "it closed the session unanswered")
                + "; the request goes again over a direct session"
        )
        connection.close()
        if holderStalled, holder > 0 { kill(holder, SIGTERM) }
        if holderStalled, !endpoint.settings.mayPrompt {
            var error = ClientError(
                "the session holder's agent session for \(connection.peerName) stalled, and a new ssh master may prompt",
                exitCode: ExitCodes.unavailable
            )
            error.needsForeground = true
            throw error
        }
        endpoint.usesHolder = false
        negotiation = nil
        endedWith = nil
        connection = try endpoint.connect(loop: loop, heartbeat: false)
        client = AgentClient(transport: connection)
        wire()
    }
}
