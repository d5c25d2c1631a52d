import QxubProtocol
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// `qxub exec`: submits one job through an agent and follows it to its end as if it ran here.
///
/// Job stdout goes to our stdout and job stderr to our stderr, byte for byte. Ctrl-C cancels the job and
/// waits for the scheduler to confirm; a second Ctrl-C leaves it running. The exit status is the job's.
public final class ExecSession {
    public enum Mode: Sendable {
        /// Follow the job: stream output, exit with its code.
        case follow
        /// Print the job id and return at once.
        case terse
        /// Follow silently: no output at all, exit with the job's code.
        case quiet
        /// Print the submission and the script; submit nothing.
        case dry
    }

    /// What the session does first.
    public enum Start: Sendable {
        case submit(JobSpec)
        /// Follow a job submitted earlier (`qxub attach`).
        case attach(jobID: String)
    }

    /// What the terminal may show (never on stdout).
    public enum Status {
        case submitted(jobID: String, backend: String)
        case state(JobState)
        case finished(code: Int32, message: String?)
        case cancelling(jobID: String)
        case detached(jobID: String, message: String)
        case reconnecting(attempt: Int, reason: String)
        case reconnected
        /// Reconnected while a submission had no answer: it goes out again with its token.
        case reconnectedToResubmit
        case warning(String)
    }

    public var onStatus: (Status) -> Void = { _ in }
    private let loop: EventLoop
    private let endpoint: AgentEndpoint
    private var connection: AgentConnection
    private let start: Start
    private let mode: Mode
    private var reconnectAttempts = 0
    /// Where submissions and job ends are recorded (best effort: a history failure never fails a job).
    public var history: HistoryStore?
    /// Only this stream is written out (`qxub history out|err`).
    public var onlyStream: Output.Stream?
    /// Follow the job log instead of the job's output (`qxub history log`).
    public var joblog = false
    /// Delays between reconnection attempts (seconds); past the last one qxub gives up with 255.
    public var reconnectDelays: [Double] = [1, 2, 4, 8, 15]
    private let channel: UInt32 = 1
    private var submitRequest: UInt32 = 0
    private var jobID: String?
    private var exitCode: Int32?
    private var interrupts = 0
    private var cancelWhenSubmitted = false
    private var signalFD: Int32 = -1
    /// The agent of the session that took the submission lists ``ProtocolConstants/capabilitySubmitToken``.
    private var agentHonoursTokens = false
    /// Names this submission for the agent across retries (``Submit/token``).
    private let submissionToken = Submit.newToken()
    /// Ctrl-C asked for the job's cancel; it is sent again on every new connection until the job ends.
    private var cancelRequested = false
    private var retriedStalledStart = false
    /// Output bytes written so far per stream (the offsets a re-watch resumes from).
    public private(set) var written: [Output.Stream: UInt64] = [.stdout: 0, .stderr: 0]

    /// Opens the first session at once (so connection errors surface before anything else).
    /// - Parameter connection: a session opened earlier on `loop` (so ssh and the login shell start while
    ///   qxub prepares the job); nil opens one now.
    public init(
        endpoint: AgentEndpoint,
        start: Start,
        mode: Mode,
        loop: EventLoop = EventLoop(),
        connection: AgentConnection? = nil
    ) throws(ClientError) {
        self.loop = connection?.loop ?? loop
        self.endpoint = endpoint
        self.start = start
        self.mode = mode
        if let connection {
            self.connection = connection
        } else {
            self.connection = try endpoint.connect(loop: loop)
        }
        if case .attach(let jobID) = start { self.jobID = jobID }
    }

    /// The loop the session runs on (for timers of whoever renders the status).
    public var eventLoop: EventLoop { loop }

    /// Runs until the job ends (or, for terse and dry runs, until it is submitted); returns the exit status.
    public func run() -> Int32 {
        // A closed stdout must show up as EPIPE (handled in deliver), never kill qxub silently.
        ignoreBrokenPipes()
        wire(connection)
        if mode != .dry && mode != .terse {
            if let fd = try? SignalPipe.install([SIGINT, SIGTERM, SIGHUP]) {
                signalFD = fd
                loop.setReadable(fd) { [unowned self] in
                    for signal in SignalPipe.drain() { interrupted(by: signal) }
                }
            }
        }
        do {
            try loop.run()
        } catch {
            return fail(ClientError("the event loop failed: \(error)", exitCode: ExitCodes.internalError))
        }
        if signalFD >= 0 {
            loop.remove(signalFD)
            SignalPipe.restoreDefault([SIGINT, SIGTERM, SIGHUP])
        }
        return exitCode ?? ExitCodes.internalError
    }

    private func wire(_ connection: AgentConnection) {
        connection.onEvent = { [unowned self, unowned connection] event in
            guard connection === self.connection else { return }
            handle(event)
        }
        connection.onClose = { [unowned self, unowned connection] error in
            guard connection === self.connection else { return }
            closed(error)
        }
    }

    private func handle(_ event: ProtocolEndpoint.Event) {
        switch event {
        case .stray(let bytes):
            onStatus(
                .warning(
                    "the remote shell printed \(bytes.count) bytes before the agent started: \(EscapedBytes(bytes, limit: 120)); a login file (~/.bashrc, ~/.cshrc) probably prints for non-interactive shells: guard it with `[ -t 1 ]`"
                )
            )
        case .ready:
            if let jobID, reconnectAttempts > 0 || isAttach {
                // Resume every stream where it stopped: nothing lost, nothing printed twice.
                if reconnectAttempts > 0 { onStatus(.reconnected) }
                reconnectAttempts = 0
                connection.send(
                    .watch(
                        Watch(
                            requestID: connection.requestID(),
                            jobID: jobID,
                            stdoutOffset: written[.stdout]!,
                            stderrOffset: written[.stderr]!,
                            joblog: joblog
                        )
                    ),
                    channel: channel
                )
                // A Ctrl-C while the connection was down: its cancel went nowhere, so it goes now.
                if cancelRequested {
                    connection.send(.cancel(JobRequest(requestID: connection.requestID(), jobID: jobID)))
                }
            } else if case .submit(let spec) = start {
                // The same token on every attempt: a retry after a lost connection gets the job of the
                // first attempt, never a second job.
                // (The reconnection counter is reset by the answer, not here: a session that dies before
                // answering every time must not be retried for ever.)
                if reconnectAttempts > 0 { onStatus(.reconnectedToResubmit) }
                agentHonoursTokens =
                    connection.negotiation?.peer.capabilities.contains(ProtocolConstants.capabilitySubmitToken) == true
                submitRequest = connection.requestID()
                connection.send(
                    .submit(
                        Submit(
                            requestID: submitRequest,
                            spec: spec,
                            dryRun: mode == .dry,
                            token: mode == .dry ? "" : submissionToken
                        )
                    )
                )
            }
        case .malformed(_, let type, _, let error):
            onStatus(.warning("ignored a malformed \(type) from the agent: \(error)"))
        case .message(let channel, let message):
            handle(message, channel: channel)
        }
    }

    private func handle(_ message: Message, channel: UInt32) {
        switch message {
        case .submitted(let submitted) where submitted.requestID == submitRequest:
            reconnectAttempts = 0
            for warning in submitted.warnings { onStatus(.warning(warning.escapingControlCharacters)) }
            switch mode {
            case .dry:
                var text = "# qxub dry run: nothing was submitted (backend: \(submitted.backend))\n"
                if !submitted.command.isEmpty {
                    text += "# submission command: " + submitted.command.map(shellQuote).joined(separator: " ") + "\n"
                } else {
                    text += "# the local backend runs the script with bash as a detached process group\n"
                }
                text += "# job script (" + submitted.stateDirectory + "/job.sh):\n" + submitted.script
                try? FileDescriptor.writeAll(1, text)
                done(0)
            case .terse:
                // The id first, then the history while ssh winds down.
                try? FileDescriptor.writeAll(1, submitted.jobID + "\n")
                connection.shutdown()
                recordSubmission(submitted)
                done(0)
            case .follow, .quiet:
                jobID = submitted.jobID
                ClientLog.write(
                    "submitted job \(submitted.jobID) (\(submitted.backend)) on \(endpoint.peerName), state in \(submitted.stateDirectory)"
                )
                recordSubmission(submitted)
                onStatus(.submitted(jobID: submitted.jobID, backend: submitted.backend))
                if cancelWhenSubmitted {
                    onStatus(.cancelling(jobID: submitted.jobID))
                    cancelRequested = true
                    connection.send(.cancel(JobRequest(requestID: connection.requestID(), jobID: submitted.jobID)))
                }
                connection.send(
                    .watch(Watch(requestID: connection.requestID(), jobID: submitted.jobID)),
                    channel: self.channel
                )
            }
        case .output(let output) where channel == self.channel:
            deliver(output)
        case .jobState(let state) where channel == self.channel:
            onStatus(.state(state))
        case .jobEnd(let termination) where channel == self.channel:
            let (code, message) = ExitCodes.exit(for: termination)
            ClientLog.write("job \(jobID ?? "?") ended: \(termination) → exit \(code)")
            if let jobID, !isAttach || history != nil {
                do {
                    try history?.recordEnd(
                        jobID: jobID,
                        platform: endpoint.platform.name,
                        exitCode: code,
                        status: code == 0 ? "succeeded" : "failed"
                    )
                } catch { ClientLog.write("history: \(error)") }
            }
            onStatus(.finished(code: code, message: message))
            done(code)
        case .cancelResult(let result):
            if !result.wasActive { onStatus(.warning("job \(result.jobID) had already finished")) }
        case .error(let error):
            if error.code == .cancelFailed, let jobID {
                let error = ClientError(error)
                onStatus(
                    .warning(
                        "cancelling \(jobID) failed: \(error.message)\(error.hint.isEmpty ? "" : " (\(error.hint))")"
                    )
                )
                return
            }
            done(fail(ClientError(error)))
        default:
            break
        }
    }

    /// Writes job output to our stdout/stderr exactly once: bytes at or past what was written.
    private func deliver(_ output: Output) {
        let already = written[output.stream]!
        guard output.offset + UInt64(output.data.count) > already else { return }
        let skip = Int(already > output.offset ? already - output.offset : 0)
        if output.offset > already {
            onStatus(
                .warning(
                    "\(output.offset - already) bytes of job \(output.stream) are missing (the file shrank or was replaced)"
                )
            )
        }
        let bytes = Array(output.data[skip...])
        written[output.stream] = output.offset + UInt64(output.data.count)
        guard mode == .follow, onlyStream == nil || onlyStream == output.stream else { return }
        let fd: Int32 = onlyStream != nil ? 1 : output.stream == .stdout ? 1 : 2
        do {
            try FileDescriptor.writeAll(fd, bytes)
        } catch let error as SystemError where error.errno == EPIPE && fd == 1 {
            stdoutClosed()
        } catch {
            // A failing stderr (or a full disk behind stdout) must not stop the job being followed.
        }
    }

    /// Whoever read our stdout has gone (`qxub exec … | head -2`): following on would only discard the
    /// job's output, so stop at once, as a Unix tool on a broken pipe does, and leave the job running.
    private func stdoutClosed() {
        guard exitCode == nil, let jobID else { return }
        let platform = endpoint.platform.remote == nil ? "" : " --platform \(endpoint.platform.name)"
        let message =
            cancelRequested
            ? "stdout was closed; stopped waiting for job \(jobID): its cancel was requested but not yet confirmed, "
                + "so it may still be running; `qxub status \(jobID)\(platform)` shows where it is"
            : "stdout was closed; stopped following job \(jobID), which keeps running: "
                + "`qxub attach \(jobID)\(platform)` follows it, `qxub cancel \(jobID)\(platform)` cancels it"
        ClientLog.write("job \(jobID): stdout closed (EPIPE); stopped following, the job keeps running")
        onStatus(.detached(jobID: jobID, message: message))
        done(ExitCodes.stdoutClosed)
    }

    private func interrupted(by signal: Int32) {
        guard let jobID else {
            if submitRequest != 0 && mode != .dry && !cancelWhenSubmitted {
                // The submission is on its way: the job may exist any moment; cancel it as soon as it does.
                cancelWhenSubmitted = true
                interrupts += 1
                onStatus(
                    .warning(
                        "interrupted while submitting: the job will be cancelled as soon as the scheduler accepts it"
                    )
                )
                return
            }
            onStatus(.warning("interrupted before the job was submitted"))
            return done(ExitCodes.interrupted)
        }
        if isAttach {
            // Attaching only watches: Ctrl-C stops watching, never cancels someone's job by surprise.
            onStatus(
                .detached(
                    jobID: jobID,
                    message: "stopped following job \(jobID); it keeps running (`qxub cancel \(jobID)` cancels it)"
                )
            )
            return done(ExitCodes.interrupted)
        }
        interrupts += 1
        if interrupts > 1 {
            onStatus(
                .detached(
                    jobID: jobID,
                    message:
                        "stopped waiting for job \(jobID): its cancel was requested but not yet confirmed, so it may still be running; `qxub status \(jobID)` shows where it is, `qxub cancel \(jobID)` cancels it"
                )
            )
            return done(ExitCodes.interrupted)
        }
        if signal != SIGINT {
            onStatus(
                .detached(
                    jobID: jobID,
                    message:
                        "left job \(jobID) running; follow it with `qxub attach \(jobID)` or cancel it with `qxub cancel \(jobID)`"
                )
            )
            return done(ExitCodes.interrupted)
        }
        onStatus(.cancelling(jobID: jobID))
        cancelRequested = true
        connection.send(.cancel(JobRequest(requestID: connection.requestID(), jobID: jobID)))
    }

    private func recordSubmission(_ submitted: Submitted) {
        guard let history, case .submit(let spec) = start else { return }
        let command: String
        switch spec.command {
        case .shell(let line): command = line
        case .argv(let arguments): command = arguments.map(shellQuote).joined(separator: " ")
        }
        do {
            try history.recordSubmission(
                jobID: submitted.jobID,
                platform: endpoint.platform.name,
                backend: submitted.backend,
                name: spec.name,
                command: command,
                workingDirectory: spec.workingDirectory,
                stateDirectory: submitted.stateDirectory
            )
        } catch {
            ClientLog.write("history: cannot record \(submitted.jobID): \(error)")
        }
    }

    private var isAttach: Bool {
        if case .attach = start { return true }
        return false
    }

    private func closed(_ error: ClientError?) {
        guard exitCode == nil else { return }
        if connection.stalled && jobID == nil && !retriedStalledStart {
            // The first session never started (a dead ssh master, typically): nothing was submitted yet,
            // so start over once on a fresh connection.
            retriedStalledStart = true
            onStatus(.warning("\(error?.message ?? "the session stalled"); reconnecting"))
            return reconnect()
        }
        guard let jobID, mode == .follow || mode == .quiet else {
            // Only an agent that honours tokens answers a retry with the first attempt's job; an older one
            // would submit the job a second time.
            if jobID == nil, submitRequest != 0, mode != .dry, agentHonoursTokens,
                interrupts <= (cancelWhenSubmitted ? 1 : 0), reconnectAttempts < reconnectDelays.count
            {
                // The submission went out and its answer did not come back: the job may exist. Ask again
                // with the same token; the agent answers with the job of the first attempt if there is one.
                let reason = error?.message ?? connection.endReason
                ClientLog.write(
                    "submission: connection lost before the answer (\(reason)); retry \(reconnectAttempts + 1) with token \(submissionToken)"
                )
                let delay = reconnectDelays[reconnectAttempts]
                reconnectAttempts += 1
                onStatus(.reconnecting(attempt: reconnectAttempts, reason: reason))
                loop.schedule(after: delay) { [weak self] in self?.reconnect() }
                return
            }
            let lost = submitRequest != 0 && mode != .dry && jobID == nil
            let failure =
                error
                ?? ClientError(
                    lost
                        ? "the agent ended the session before answering the submission"
                        : "the agent ended the session before the job was submitted",
                    exitCode: ExitCodes.unavailable
                )
            return done(
                fail(
                    lost
                        ? ClientError(
                            failure.message
                                + "; the job may have been submitted: `qxub history --remote` or qstat/squeue shows it",
                            hint: failure.hint,
                            exitCode: failure.exitCode
                        ) : failure
                )
            )
        }
        // The job runs on regardless: reconnect with backoff and resume from the byte offsets.
        let reason = error?.message ?? connection.endReason
        let platform = endpoint.platform.remote == nil ? "" : " --platform \(endpoint.platform.name)"
        guard reconnectAttempts < reconnectDelays.count, interrupts <= (cancelRequested ? 1 : 0) else {
            let message =
                cancelRequested
                ? "lost the connection to \(endpoint.peerName) (\(reason)) before the cancel was confirmed; job \(jobID) may still be running: `qxub cancel \(jobID)\(platform)` cancels it"
                : "lost the connection to \(endpoint.peerName) (\(reason)); job \(jobID) is still running: `qxub attach \(jobID)\(platform)` follows it"
            onStatus(.detached(jobID: jobID, message: message))
            return done(ExitCodes.connectionLost)
        }
        let delay = reconnectDelays[reconnectAttempts]
        ClientLog.write(
            "job \(jobID): connection lost (\(reason)); reconnect attempt \(reconnectAttempts + 1) in \(delay) s"
        )
        reconnectAttempts += 1
        onStatus(.reconnecting(attempt: reconnectAttempts, reason: reason))
        loop.schedule(after: delay) { [weak self] in self?.reconnect() }
    }

    private func reconnect() {
        guard exitCode == nil else { return }
        wireBytesReceived += connection.bytesReceived
        do {
            // (A session that stalled or fell silent gets a fresh ssh master: see AgentConnection.)
            connection = try endpoint.reconnect(replacing: connection) { [unowned self] in onStatus(.warning($0)) }
            wire(connection)
        } catch {
            closed(error)
        }
    }

    /// qxub's own errors are printed even with --quiet (which silences the job and the progress, not
    /// the reason qxub itself failed).
    /// The error that ended the session, if one did.
    public private(set) var failure: ClientError?

    private func fail(_ error: ClientError) -> Int32 {
        failure = error
        try? FileDescriptor.writeAll(
            2,
            "qxub: error: \(error.message)\n" + (error.hint.isEmpty ? "" : "  hint: \(error.hint)\n")
        )
        return error.exitCode
    }

    /// Wire bytes received over all connections of this session, and job output bytes delivered.
    public private(set) var wireBytesReceived = 0
    public var outputBytes: UInt64 { written[.stdout]! + written[.stderr]! }

    private func done(_ code: Int32) {
        guard exitCode == nil else { return }
        exitCode = code
        wireBytesReceived += connection.bytesReceived
        connection.close()
        loop.stop()
    }
}
