import QxubProtocol
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// Runs a ``JobSessionStateMachine`` on an event loop: feeds it the session's events (agent messages through
/// the typed ``AgentClient``, the session's end, signals, timers, our stdout's progress) and performs the
/// actions it returns. All policy lives in the machine; this only does I/O.
package final class JobSessionDriver {
    package let loop: EventLoop
    private let endpoint: AgentEndpoint
    private var connection: AgentConnection
    private var client: AgentClient
    package private(set) var machine: JobSessionStateMachine
    private let writer: OutputWriter
    private let signals: [Int32]
    private var signalFD: Int32 = -1
    /// The exit status once the machine has finished, nil until then.
    package private(set) var exitCode: Int32?
    /// Where submissions and job ends are recorded (best effort: a history failure never fails a job).
    package var history: HistoryStore?
    package var onStatus: (SessionStatus) -> Void = { _ in }
    /// The error that ended the session, if one did.
    package private(set) var failure: ClientError?
    /// Wire bytes received over all sessions.
    package private(set) var wireBytesReceived = 0
    /// Our terminal, for an interactive job (nil: stdin is not a terminal, or the session is not interactive).
    package var terminal: JobTerminal?
    /// Called when our terminal becomes the job's and when it is ours again (the status line stops, resumes).
    package var onTerminal: (JobSessionStateMachine.TerminalControl) -> Void = { _ in }
    /// Called before job output is written (a status line drawn on the same terminal makes way for it).
    package var onOutput: () -> Void = {}

    /// - Parameters:
    ///   - connection: the first session, opened earlier on `loop`.
    ///   - signals: the signals the session handles (Ctrl-C cancels).
    package init(
        machine: JobSessionStateMachine,
        endpoint: AgentEndpoint,
        connection: AgentConnection,
        signals: [Int32]
    ) {
        self.machine = machine
        self.endpoint = endpoint
        self.connection = connection
        self.loop = connection.loop
        self.client = AgentClient(transport: connection)
        self.signals = signals
        self.writer = OutputWriter(loop: connection.loop)
    }

    /// Runs until the machine finishes; returns its exit status.
    package func run() -> Int32 {
        start()
        do {
            try loop.run()
        } catch {
            if exitCode == nil {
                report(ClientError("the event loop failed: \(error)", exitCode: ExitCodes.internalError))
                finish(ExitCodes.internalError)
            }
        }
        if signalFD >= 0 {
            loop.remove(signalFD)
            SignalPipe.restoreDefault(signals)
        }
        // Whatever ended the session, our terminal is as it was before.
        terminal?.release()
        writer.close()
        return exitCode ?? ExitCodes.internalError
    }

    /// Wires the session and the signals to the machine without running the loop: ``run()`` runs it; a test
    /// drives it instead (on a ``ManualClock``).
    package func start() {
        // A closed stdout must show up as EPIPE, never kill qxub silently.
        ignoreBrokenPipes()
        writer.onBacklog = { [unowned self] bytes in perform(machine.outputBacklog(bytes)) }
        writer.onClosed = { [unowned self] target in
            if target == .stdout { perform(machine.stdoutClosed()) }
        }
        wire(connection)
        if !signals.isEmpty, let fd = try? SignalPipe.install(signals) {
            signalFD = fd
            loop.setReadable(fd) { [unowned self] in
                for signal in SignalPipe.drain() {
                    if signal == SIGWINCH {
                        if let size = terminal?.size() {
                            perform(machine.terminalResized(rows: size.rows, columns: size.columns))
                        }
                        continue
                    }
                    perform(machine.signal(signal == SIGINT ? .interrupt : .terminate))
                }
            }
        }
    }

    private func wire(_ connection: AgentConnection) {
        let client = AgentClient(transport: connection)
        self.client = client
        client.onStream = { [unowned self] channel, message in
            let job = Int(channel) - 1
            switch message {
            case .output(let output): perform(machine.output(job: job, output))
            case .jobState(let state): perform(machine.jobState(job: job, state))
            case .jobEnd(let termination): perform(machine.jobEnd(job: job, termination))
            default: break
            }
        }
        client.onUnmatched = { [unowned self] message in
            if case .error(let error) = message { perform(machine.requestFailed(nil, error)) }
        }
        connection.onEvent = { [unowned self, unowned connection] event in
            guard connection === self.connection else { return }
            switch event {
            case .ready(let negotiation):
                perform(machine.ready(capabilities: negotiation.peer.capabilities))
            case .message(let channel, let message):
                client.receive(message, channel: channel)
            case .stray(let bytes):
                perform(machine.stray(bytes))
            case .malformed(_, let type, _, let error):
                perform(machine.malformed(type: type, error: "\(error)"))
            }
        }
        connection.onClose = { [unowned self, unowned connection] error in
            guard connection === self.connection else { return }
            perform(
                machine.closed(error: error, endReason: connection.endReason, stalled: connection.stalled)
            )
        }
    }

    private func perform(_ actions: [JobSessionStateMachine.Action]) {
        for action in actions {
            switch action {
            case .send(let request): send(request)
            case .reconnect(let delay):
                if delay <= 0 {
                    perform(machine.reconnectDue())
                } else {
                    loop.schedule(after: delay) { [weak self] in
                        guard let self else { return }
                        perform(machine.reconnectDue())
                    }
                }
            case .connect: reconnect()
            case .write(let target, let bytes):
                onOutput()
                writer.write(target, bytes)
            case .status(let status): onStatus(status)
            case .terminal(let control): controlTerminal(control)
            case .log(let line): ClientLog.write(line)
            case .recordSubmission(let job, let submitted): recordSubmission(job: job, submitted)
            case .recordEnd(_, let jobID, let code):
                do {
                    try history?.recordEnd(
                        jobID: jobID,
                        platform: endpoint.platform.name,
                        exitCode: code,
                        status: code == 0 ? "succeeded" : "failed"
                    )
                } catch { ClientLog.write("history: \(error)") }
            case .shutdownConnection: connection.shutdown()
            case .fail(let error): report(error)
            case .finish(let code): finish(code)
            }
        }
    }

    private func send(_ request: JobSessionStateMachine.Request) {
        switch request {
        case .submit(let job, let spec, let token, let dryRun):
            client.submit(spec, dryRun: dryRun, token: token) { [unowned self] reply in
                switch reply {
                case .success(let submitted): perform(machine.submitted(job: job, submitted))
                case .failure(let error): perform(machine.requestFailed(.submit(job: job), error))
                }
            }
        case .watch(let job, let jobID, let stdoutOffset, let stderrOffset, let joblog, let stdoutTail):
            client.watch(
                jobID: jobID,
                channel: UInt32(job + 1),
                stdoutOffset: stdoutOffset,
                stderrOffset: stderrOffset,
                joblog: joblog,
                stdoutTail: stdoutTail
            ) { [unowned self] error in perform(machine.requestFailed(.watch(job: job), error)) }
        case .unwatch(let job, let jobID):
            client.unwatch(jobID: jobID, channel: UInt32(job + 1))
        case .cancel(let job, let jobID):
            client.cancel(jobID: jobID) { [unowned self] reply in
                switch reply {
                case .success(let result): perform(machine.cancelResult(job: job, result))
                case .failure(let error): perform(machine.requestFailed(.cancel(job: job), error))
                }
            }
        case .terminalInput(let job, let data):
            client.terminalInput(data, channel: UInt32(job + 1))
        case .terminalResize(let job, let rows, let columns):
            client.terminalResize(rows: rows, columns: columns, channel: UInt32(job + 1))
        }
    }

    /// Our terminal becomes the job's (keys read and sent, its size sent), or ours again.
    private func controlTerminal(_ control: JobSessionStateMachine.TerminalControl) {
        switch control {
        case .take:
            guard let terminal else { break }
            terminal.take(on: loop) { [unowned self] bytes in perform(machine.terminalInput(bytes)) }
            if let size = terminal.size() { perform(machine.terminalResized(rows: size.rows, columns: size.columns)) }
        case .release:
            terminal?.release()
        }
        onTerminal(control)
    }

    private func reconnect() {
        wireBytesReceived += connection.bytesReceived
        let notify: (String) -> Void = { [unowned self] text in
            onStatus(machine.configuration.presentation == .exec ? .warning(text) : .note(text))
        }
        do {
            // (A session that stalled or fell silent gets a fresh ssh master: see AgentEndpoint.)
            connection = try endpoint.reconnect(replacing: connection, notify: notify)
            wire(connection)
        } catch {
            perform(machine.connectFailed(error))
        }
    }

    private func recordSubmission(job: Int, _ submitted: Submitted) {
        guard let history, case .submit(let spec, _) = machine.configuration.jobs[job] else { return }
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
                stateDirectory: submitted.stateDirectory,
                stdoutPath: spec.stdoutPath ?? "",
                stderrPath: spec.stderrPath ?? "",
                joblogPath: spec.joblogPath ?? "",
                tags: spec.tags.map { $0.key + "=" + $0.value }
            )
        } catch {
            ClientLog.write("history: cannot record \(submitted.jobID): \(error)")
        }
    }

    /// qxub's own errors are printed even with --quiet (which silences the job and the progress, not the
    /// reason qxub itself failed).
    private func report(_ error: ClientError) {
        failure = error
        try? FileDescriptor.writeAll(
            2,
            "qxub: error: \(error.message)\n" + (error.hint.isEmpty ? "" : "  hint: \(error.hint)\n")
        )
    }

    private func finish(_ code: Int32) {
        guard exitCode == nil else { return }
        exitCode = code
        wireBytesReceived += connection.bytesReceived
        connection.close()
        loop.stop()
    }
}
