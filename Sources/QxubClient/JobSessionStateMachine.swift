import QxubProtocol
import QxubSystem

/// The policy of a job session as data: events in, actions out, no I/O.
///
/// `qxub exec` is a batch of one: both submit jobs (or attach to one), follow them over one agent session,
/// reconnect with backoff when it is lost, ask again for unanswered submissions with their tokens, watch
/// again from the byte offsets written, send a requested cancel again on every new session, and pause a
/// job's watch while our stdout does not keep up. ``JobSessionDriver`` performs the actions on the event
/// loop; the tests drive this alone, without processes or time.
package struct JobSessionStateMachine {
    package enum Mode: Sendable, Equatable {
        /// Follow the jobs: stream output, exit with their code.
        case follow
        /// Print the job ids and return once they are submitted.
        case terse
        /// Follow silently.
        case quiet
        /// Print the submission and the script; submit nothing.
        case dry
    }

    /// How the session speaks: `exec` (statuses for the terminal, errors with hints, the job's exit status) or
    /// `batch` (notes, and the number of jobs that failed).
    package enum Presentation: Sendable, Equatable {
        case exec
        case batch
    }

    package enum JobStart: Sendable, Equatable {
        /// Submit it; `token` names the submission for the agent across retries (``Submit/token``).
        case submit(JobSpec, token: String)
        /// Follow a job submitted earlier (`qxub attach`).
        case attach(jobID: String)
    }

    package struct Configuration: Sendable {
        package var presentation: Presentation
        package var mode: Mode
        package var jobs: [JobStart]
        package var reconnect = ReconnectPolicy()
        /// Only this job stream is written, to our stdout (`qxub history out|err`).
        package var onlyStream: Output.Stream?
        /// Follow the job log instead of the job's output (`qxub history log`).
        package var joblog = false
        /// The far end in messages ("the local agent", "gadi").
        package var peerName: String
        /// The platform's name when it is remote: the commands qxub suggests then name it.
        package var remotePlatform: String?
        /// Output bytes waiting for our stdout (or stderr) above which the jobs' watches are paused.
        package var outputBacklogLimit = 1 << 20
        /// Attaching to an interactive job replays at most this much of its terminal's recent output.
        package var terminalReplay: UInt64 = 64 * 1024
        /// The one job submitted is an array with these indices (batch presentation): once submitted, its
        /// subjobs are followed instead, their output tagged with their indices, their states counted in one
        /// line (``ArrayProgress``), and the exit status is the first non-zero one (the submission's, then the
        /// subjobs' in index order).
        package var arrayIndices: [Int]?

        package init(
            presentation: Presentation,
            mode: Mode,
            jobs: [JobStart],
            peerName: String,
            remotePlatform: String? = nil
        ) {
            self.presentation = presentation
            self.mode = mode
            self.jobs = jobs
            self.peerName = peerName
            self.remotePlatform = remotePlatform
        }
    }

    package enum State: Sendable, Equatable {
        /// A session is starting: no hello yet.
        case connecting
        /// Hellos exchanged: requests may go out.
        case open
        /// The session ended; a new one is opened after ``Action/reconnect(after:)``.
        case waitingToReconnect
        /// Done: the exit status waits until the output still queued for our stdout is written.
        case draining(Int32)
        case finished(Int32)
    }

    /// What a request is for; the typed client gives it a request id and matches the reply to it.
    package enum Request: Sendable, Equatable {
        case submit(job: Int, spec: JobSpec, token: String, dryRun: Bool)
        case watch(
            job: Int,
            jobID: String,
            stdoutOffset: UInt64,
            stderrOffset: UInt64,
            joblog: Bool,
            stdoutTail: UInt64
        )
        case unwatch(job: Int, jobID: String)
        case cancel(job: Int, jobID: String)
        /// Keys typed on our terminal, for the interactive job's terminal.
        case terminalInput(job: Int, data: [UInt8])
        case terminalResize(job: Int, rows: UInt16, columns: UInt16)
    }

    /// Our own terminal, for an interactive job.
    package enum TerminalControl: Sendable, Equatable {
        /// The job's terminal is up: ours becomes it (raw mode, keys sent, window size changes sent).
        case take
        /// Ours again (its mode as it was): before anything else is printed at the end.
        case release
    }

    /// The request an error answers (nil: one that names no request of ours).
    package enum FailedRequest: Sendable, Equatable {
        case submit(job: Int)
        case watch(job: Int)
        case cancel(job: Int)
    }

    /// A signal as the session sees it: Ctrl-C asks for the cancel, the others leave the job running.
    package enum Interrupt: Sendable, Equatable {
        case interrupt
        case terminate
    }

    package enum Action: Sendable, Equatable {
        case send(Request)
        /// Open a new session after `after` seconds (0: at once), then call ``reconnectDue()``.
        case reconnect(after: Double)
        /// Open the new session now (its events follow; ``connectFailed(_:)`` if it cannot start).
        case connect
        case write(OutputSink.Target, [UInt8])
        case status(SessionStatus)
        case terminal(TerminalControl)
        case log(String)
        case recordSubmission(job: Int, Submitted)
        case recordEnd(job: Int, jobID: String, code: Int32)
        /// Say goodbye without waiting for the process (`--terse`: ssh winds down while the history is written).
        case shutdownConnection
        /// Print qxub's own error (even with --quiet); ``finish(_:)`` follows.
        case fail(ClientError)
        case finish(Int32)
    }

    /// One job of the session and how far it got.
    package struct Job: Sendable, Equatable {
        package let start: JobStart
        package var jobID: String?
        /// Its submission went out at least once.
        package var submitSent = false
        /// Its submission went out on the current session and has no answer yet.
        package var awaitingAnswer = false
        /// A watch of it is active on the current session.
        package var watching = false
        /// Its watch was withdrawn while our stdout does not keep up.
        package var paused = false
        /// Output bytes taken per stream (a re-watch resumes from here: nothing lost, nothing twice).
        package var offsets: [Output.Stream: UInt64] = [.stdout: 0, .stderr: 0]
        package var sink: OutputSink
        package var code: Int32?
        package var message: String?
        /// Its last known phase (counted in an array's status line).
        package var phase: JobState.Phase?

        init(start: JobStart, sink: OutputSink) {
            self.start = start
            self.sink = sink
            if case .attach(let jobID) = start { self.jobID = jobID }
        }
    }

    package let configuration: Configuration
    package private(set) var state: State = .connecting
    package private(set) var jobs: [Job]
    /// Reconnections since the last useful answer.
    package private(set) var attempts = 0
    /// The agent of the last session lists ``ProtocolConstants/capabilitySubmitToken``.
    private var agentHonoursTokens = false
    /// Ctrl-C asked for the cancel; it is sent again on every new session until the job ends.
    package private(set) var cancelRequested = false
    /// Ctrl-C came while the submission was on its way: cancel the job as soon as it exists.
    private var cancelWhenSubmitted = false
    private var interrupts = 0
    private var retriedStall = false
    /// The pending reconnection is the one retry of a stalled first session.
    private var reconnectingAfterStall = false
    /// Bytes queued for our stdout and stderr, and whether the watches are paused for them.
    private var backlog = 0
    private var outputStalled = false
    /// The job is interactive (its spec has a terminal, or the agent said so in a job state).
    package private(set) var interactive = false
    /// Our terminal is the job's (raw mode): from the job's start until the session ends.
    package private(set) var terminalTaken = false
    /// Keys typed while no watch was on (a lost session): sent after the next watch, in order.
    private var pendingInput: [UInt8] = []
    /// The last size of our terminal: sent again after every watch (it may have changed meanwhile).
    private var terminalSize: (rows: UInt16, columns: UInt16)?
    /// Keys kept while the session is down, at most (a paste into a lost session is not kept whole).
    static let pendingInputLimit = 64 * 1024
    /// The array's status line last shown (a new one only when a count changes).
    private var arrayLine: String?

    package init(_ configuration: Configuration) {
        self.configuration = configuration
        self.jobs = configuration.jobs.enumerated().map { index, start in
            let shape: OutputSink.Shape
            switch (configuration.presentation, configuration.mode) {
            case (.exec, .follow): shape = .raw(only: configuration.onlyStream)
            case (.batch, .follow) where configuration.arrayIndices != nil: shape = .silent
            case (.batch, .follow), (.batch, .quiet): shape = .tagged(number: index + 1)
            default: shape = .silent
            }
            return Job(start: start, sink: OutputSink(shape))
        }
        if case .submit(let spec, _)? = configuration.jobs.first, spec.terminal != nil { interactive = true }
    }

    private var mode: Mode { configuration.mode }
    private var isExec: Bool { configuration.presentation == .exec }
    private var isAttach: Bool {
        if case .attach = jobs.first?.start { return true }
        return false
    }
    /// Events still matter: the session has not ended.
    private var isLive: Bool {
        switch state {
        case .connecting, .open, .waitingToReconnect: true
        case .draining, .finished: false
        }
    }
    private var platformOption: String {
        configuration.remotePlatform.map { " --platform \($0)" } ?? ""
    }

    // MARK: - Session events

    /// Hellos exchanged: submit what has no job yet, watch the rest from their offsets.
    package mutating func ready(capabilities: [String]) -> [Action] {
        guard state == .connecting else { return [] }
        state = .open
        agentHonoursTokens = capabilities.contains(ProtocolConstants.capabilitySubmitToken)
        reconnectingAfterStall = false
        if interactive, jobs[0].jobID == nil, !capabilities.contains(ProtocolConstants.capabilityInteractive) {
            return fail(
                ClientError(
                    "the qxub-agent on \(configuration.peerName) does not run interactive jobs (it is older than this qxub)",
                    hint: "install this version's agent: `qxub agent install\(platformOption)`",
                    exitCode: ExitCodes.unavailable
                )
            )
        }
        var actions: [Action] = []
        switch configuration.presentation {
        case .exec:
            if let jobID = jobs[0].jobID, attempts > 0 || isAttach {
                if attempts > 0 { actions.append(.status(.reconnected)) }
                actions += watch(0)
                // A Ctrl-C while the session was down: its cancel went nowhere, so it goes now.
                if cancelRequested { actions.append(.send(.cancel(job: 0, jobID: jobID))) }
            } else if jobs[0].jobID == nil, case .submit(let spec, let token) = jobs[0].start {
                // The same token on every attempt: a retry after a lost session gets the job of the first
                // attempt, never a second job.
                if attempts > 0 { actions.append(.status(.reconnectedToResubmit)) }
                actions.append(submit(0, spec: spec, token: mode == .dry ? "" : token))
            }
        case .batch:
            if attempts > 0 { actions.append(.status(.note("reconnected"))) }
            for index in jobs.indices where jobs[index].code == nil && isLive {
                if let jobID = jobs[index].jobID {
                    guard mode != .terse else { continue }
                    actions += watch(index)
                    // An array's cancel is the array's own (below), not one per subjob.
                    if cancelRequested && configuration.arrayIndices == nil {
                        actions.append(.send(.cancel(job: index, jobID: jobID)))
                    }
                } else if (cancelRequested && !jobs[index].submitSent)
                    || (jobs[index].submitSent && !agentHonoursTokens)
                {
                    // Interrupted before it was asked for; or asked for, unanswered, and this agent cannot
                    // tell whether it made the job (asking again could make it twice).
                    jobs[index].code = cancelRequested ? ExitCodes.interrupted : ExitCodes.connectionLost
                    jobs[index].message =
                        cancelRequested
                        ? "not submitted: interrupted"
                        : "the answer to its submission was lost; it may have been submitted"
                    if !cancelRequested {
                        actions.append(
                            .status(
                                .note(
                                    "[\(index + 1)] the answer to its submission was lost; it may have been submitted: `qxub history --remote` shows it"
                                )
                            )
                        )
                    }
                    actions += jobEnded()
                } else if case .submit(let spec, let token) = jobs[index].start {
                    // Asked for again with its token: the agent answers with the job it made, if it made one
                    // (and after a Ctrl-C, the answer is cancelled at once).
                    actions.append(submit(index, spec: spec, token: token))
                }
            }
            // A Ctrl-C while the session was down: the array's cancel went nowhere, so it goes now.
            if configuration.arrayIndices != nil, cancelRequested, jobs.count > 1, let arrayID = jobs[0].jobID,
                isLive
            {
                actions.append(.send(.cancel(job: 0, jobID: arrayID)))
            }
        }
        // The counter is reset by a useful session, not by any hello: a session that dies before answering
        // a submission every time must not be retried for ever.
        if !jobs.contains(where: \.awaitingAnswer) { attempts = 0 }
        return actions
    }

    /// The session ended (nil error: without an error of its own; `endReason` says why).
    /// - Parameter stalled: it never got the agent's hello in time (a dead ssh master, typically).
    package mutating func closed(error: ClientError?, endReason: String, stalled: Bool) -> [Action] {
        guard isLive else { return [] }
        state = .waitingToReconnect
        for index in jobs.indices {
            jobs[index].watching = false
            jobs[index].awaitingAnswer = false
        }
        if stalled && !retriedStall && !jobs.contains(where: { $0.jobID != nil }) {
            // The first session never started: nothing was submitted yet, so start over once at once.
            retriedStall = true
            reconnectingAfterStall = true
            let text = "\(error?.message ?? "the session stalled"); reconnecting"
            return [.status(isExec ? .warning(text) : .note(text)), .reconnect(after: 0)]
        }
        let reason = error?.message ?? endReason
        return isExec ? execClosed(error: error, reason: reason) : batchClosed(reason: reason)
    }

    private mutating func execClosed(error: ClientError?, reason: String) -> [Action] {
        let job = jobs[0]
        guard let jobID = job.jobID, mode == .follow || mode == .quiet else {
            // Only an agent that honours tokens answers a retry with the first attempt's job; an older one
            // would submit the job a second time.
            if job.jobID == nil, job.submitSent, mode != .dry, agentHonoursTokens,
                interrupts <= (cancelWhenSubmitted ? 1 : 0),
                let delay = configuration.reconnect.delay(afterAttempts: attempts),
                case .submit(_, let token) = job.start
            {
                // The submission went out and its answer did not come back: the job may exist. Ask again with
                // the same token; the agent answers with the job of the first attempt if there is one.
                attempts += 1
                return [
                    .log(
                        "submission: connection lost before the answer (\(reason)); retry \(attempts) with token \(token)"
                    ),
                    .status(.reconnecting(attempt: attempts, reason: reason)),
                    .reconnect(after: delay),
                ]
            }
            let lost = job.submitSent && mode != .dry && job.jobID == nil
            let failure =
                error
                ?? ClientError(
                    lost
                        ? "the agent ended the session before answering the submission"
                        : "the agent ended the session before the job was submitted",
                    exitCode: ExitCodes.unavailable
                )
            return fail(
                lost
                    ? ClientError(
                        failure.message
                            + "; the job may have been submitted: `qxub history --remote` or qstat/squeue shows it",
                        hint: failure.hint,
                        exitCode: failure.exitCode
                    ) : failure
            )
        }
        // The job runs on regardless: reconnect with backoff and resume from the byte offsets.
        guard let delay = configuration.reconnect.delay(afterAttempts: attempts),
            interrupts <= (cancelRequested ? 1 : 0)
        else {
            let message =
                cancelRequested
                ? "lost the connection to \(configuration.peerName) (\(reason)) before the cancel was confirmed; job \(jobID) may still be running: `qxub cancel \(jobID)\(platformOption)` cancels it"
                : "lost the connection to \(configuration.peerName) (\(reason)); job \(jobID) is still running: `qxub attach \(jobID)\(platformOption)` follows it"
            return [.status(.detached(jobID: jobID, message: message))] + finishing(ExitCodes.connectionLost)
        }
        attempts += 1
        return [
            .log("job \(jobID): connection lost (\(reason)); reconnect attempt \(attempts) in \(delay) s"),
            .status(.reconnecting(attempt: attempts, reason: reason)),
            .reconnect(after: delay),
        ]
    }

    private mutating func batchClosed(reason: String) -> [Action] {
        if let delay = configuration.reconnect.delay(afterAttempts: attempts) {
            // The jobs run on: reconnect, then watch each again from its offsets (nothing lost, nothing twice)
            // and ask again for the submissions that got no answer (their tokens find their jobs).
            attempts += 1
            return [
                .status(
                    .note("lost the connection (\(reason)); reconnecting in \(Int(delay)) s (attempt \(attempts))")
                ),
                .reconnect(after: delay),
            ]
        }
        let running = jobs.compactMap { $0.code == nil ? $0.jobID : nil }
        let text =
            "lost the connection (\(reason))"
            + (running.isEmpty
                ? ""
                : "; still running: " + running.joined(separator: " ")
                    + " (`qxub attach ID\(platformOption)` follows one)")
        return [.status(.note(text))] + finishing(ExitCodes.connectionLost)
    }

    /// The pause before a reconnection is over.
    package mutating func reconnectDue() -> [Action] {
        guard state == .waitingToReconnect else { return [] }
        state = .connecting
        return [.connect]
    }

    /// A new session could not even start.
    package mutating func connectFailed(_ error: ClientError) -> [Action] {
        guard isLive else { return [] }
        if !isExec && reconnectingAfterStall {
            reconnectingAfterStall = false
            state = .waitingToReconnect
            return [.status(.note(error.message))] + finishing(error.exitCode)
        }
        return closed(error: error, endReason: error.message, stalled: false)
    }

    /// Login-shell noise before the agent's magic.
    package func stray(_ bytes: [UInt8]) -> [Action] {
        guard isLive else { return [] }
        if isExec {
            return [
                .status(
                    .warning(
                        "the remote shell printed \(bytes.count) bytes before the agent started: \(EscapedBytes(bytes, limit: 120)); a login file (~/.bashrc, ~/.cshrc) probably prints for non-interactive shells: guard it with `[ -t 1 ]`"
                    )
                )
            ]
        }
        return [
            .status(
                .note(
                    "warning: the remote shell printed \(bytes.count) bytes before the agent started: \(EscapedBytes(bytes, limit: 80))"
                )
            )
        ]
    }

    /// A frame from the agent that does not decode.
    package func malformed(type: FrameType, error: String) -> [Action] {
        guard isLive, isExec else { return [] }
        return [.status(.warning("ignored a malformed \(type) from the agent: \(error)"))]
    }

    // MARK: - Replies and job streams

    package mutating func submitted(job index: Int, _ submitted: Submitted) -> [Action] {
        guard isLive, jobs.indices.contains(index), jobs[index].jobID == nil, jobs[index].code == nil else {
            return []
        }
        jobs[index].awaitingAnswer = false
        attempts = 0
        var actions: [Action] = []
        guard isExec else {
            jobs[index].jobID = submitted.jobID
            if cancelRequested, state == .open {
                actions.append(.send(.cancel(job: index, jobID: submitted.jobID)))
            }
            if index == 0 {
                for warning in submitted.warnings {
                    actions.append(.status(.note("warning: \(warning.escapingControlCharacters)")))
                }
            }
            actions.append(.recordSubmission(job: index, submitted))
            if let indices = configuration.arrayIndices, index == 0, mode != .terse {
                return actions + followSubjobs(of: submitted.jobID, indices: indices)
            }
            if mode == .terse {
                actions.append(.write(.stdout, Array((submitted.jobID + "\n").utf8)))
                if jobs.allSatisfy({ $0.jobID != nil || $0.code != nil }) { actions += finishing(failures) }
                return actions
            }
            return actions + watch(index)
        }
        for warning in submitted.warnings { actions.append(.status(.warning(warning.escapingControlCharacters))) }
        switch mode {
        case .dry:
            var text = "# qxub dry run: nothing was submitted (backend: \(submitted.backend))\n"
            if !submitted.command.isEmpty {
                text += "# submission command: " + submitted.command.map(shellQuote).joined(separator: " ") + "\n"
            } else {
                text += "# the local backend runs the script with bash as a detached process group\n"
            }
            text += "# job script (" + submitted.stateDirectory + "/job.sh):\n" + submitted.script
            return actions + [.write(.stdout, Array(text.utf8))] + finishing(0)
        case .terse:
            // The id first, then the history while ssh winds down.
            return actions + [
                .write(.stdout, Array((submitted.jobID + "\n").utf8)), .shutdownConnection,
                .recordSubmission(job: index, submitted),
            ] + finishing(0)
        case .follow, .quiet:
            jobs[index].jobID = submitted.jobID
            actions += [
                .log(
                    "submitted job \(submitted.jobID) (\(submitted.backend)) on \(configuration.peerName), state in \(submitted.stateDirectory)"
                ),
                .recordSubmission(job: index, submitted),
                .status(.submitted(jobID: submitted.jobID, backend: submitted.backend)),
            ]
            if cancelWhenSubmitted {
                cancelRequested = true
                actions += [
                    .status(.cancelling(jobID: submitted.jobID)),
                    .send(.cancel(job: index, jobID: submitted.jobID)),
                ]
            }
            return actions + watch(index)
        }
    }

    /// The agent refused a request (`request` nil: an error that names no request of ours).
    package mutating func requestFailed(_ request: FailedRequest?, _ error: ErrorMessage) -> [Action] {
        guard isLive else { return [] }
        let clientError = ClientError(error)
        guard isExec else {
            guard case .submit(let index) = request, jobs.indices.contains(index), jobs[index].code == nil else {
                return [.status(.note("error: \(clientError.message)"))]
            }
            jobs[index].awaitingAnswer = false
            jobs[index].code = clientError.exitCode
            jobs[index].message = clientError.message
            return [.status(.note("[\(index + 1)] not submitted: \(clientError.message)"))] + jobEnded()
        }
        if error.code == .cancelFailed, let jobID = jobs[0].jobID {
            return [
                .status(
                    .warning(
                        "cancelling \(jobID) failed: \(clientError.message)\(clientError.hint.isEmpty ? "" : " (\(clientError.hint))")"
                    )
                )
            ]
        }
        return fail(clientError)
    }

    package func cancelResult(job index: Int, _ result: CancelResult) -> [Action] {
        guard isLive, isExec, !result.wasActive else { return [] }
        return [.status(.warning("job \(result.jobID) had already finished"))]
    }

    /// Job output: written exactly once, the bytes at or past what was taken.
    package mutating func output(job index: Int, _ output: Output) -> [Action] {
        guard isLive, jobs.indices.contains(index), jobs[index].code == nil else { return [] }
        let already = jobs[index].offsets[output.stream] ?? 0
        let (end, overflow) = output.offset.addingReportingOverflow(UInt64(output.data.count))
        guard !overflow, end > already else { return [] }
        var actions: [Action] = []
        if output.offset > already {
            let text =
                "\(output.offset - already) bytes of job \(output.stream) are missing (the file shrank or was replaced)"
            actions.append(.status(isExec ? .warning(text) : .note("warning: " + text)))
        }
        let skip = Int(already > output.offset ? already - output.offset : 0)
        jobs[index].offsets[output.stream] = end
        for (target, bytes) in jobs[index].sink.accept(output.data[skip...], from: output.stream) {
            actions.append(.write(target, bytes))
        }
        return actions
    }

    package mutating func jobState(job index: Int, _ jobState: JobState) -> [Action] {
        guard isLive, jobs.indices.contains(index) else { return [] }
        guard isExec else {
            jobs[index].phase = jobState.phase
            return arrayProgress()
        }
        if jobState.terminal { interactive = true }
        var actions: [Action] = [.status(.state(jobState))]
        if interactive, jobState.phase == .running, !terminalTaken, mode == .follow, configuration.onlyStream == nil,
            !configuration.joblog
        {
            terminalTaken = true
            actions.append(.terminal(.take))
        }
        return actions
    }

    /// Keys typed on our terminal (once it is the job's): sent now, or after the next watch.
    package mutating func terminalInput(_ data: [UInt8]) -> [Action] {
        guard isLive, terminalTaken, !data.isEmpty, jobs[0].code == nil else { return [] }
        if state == .open, jobs[0].watching, pendingInput.isEmpty {
            return [.send(.terminalInput(job: 0, data: data))]
        }
        pendingInput += data
        if pendingInput.count > Self.pendingInputLimit {
            pendingInput.removeFirst(pendingInput.count - Self.pendingInputLimit)
        }
        return []
    }

    /// Our terminal has a new size: the job's gets it now, or after the next watch.
    package mutating func terminalResized(rows: UInt16, columns: UInt16) -> [Action] {
        guard rows > 0, columns > 0 else { return [] }
        terminalSize = (rows, columns)
        guard isLive, terminalTaken, state == .open, jobs[0].watching, jobs[0].code == nil else { return [] }
        return [.send(.terminalResize(job: 0, rows: rows, columns: columns))]
    }

    package mutating func jobEnd(job index: Int, _ termination: JobTermination) -> [Action] {
        guard isLive, jobs.indices.contains(index), jobs[index].code == nil else { return [] }
        let (code, message) = ExitCodes.exit(for: termination)
        jobs[index].code = code
        jobs[index].message = message
        jobs[index].watching = false
        jobs[index].paused = false
        var actions: [Action] = jobs[index].sink.finish().map { .write($0.0, $0.1) }
        actions += releaseTerminal()
        let jobID = jobs[index].jobID
        if isExec { actions.append(.log("job \(jobID ?? "?") ended: \(termination) → exit \(code)")) }
        if let jobID { actions.append(.recordEnd(job: index, jobID: jobID, code: code)) }
        guard isExec else { return actions + arrayProgress() + jobEnded() }
        return actions + [.status(.finished(code: code, message: message))] + finishing(code)
    }

    // MARK: - Local events

    /// A signal (Ctrl-C: cancel the job; again, or another signal: leave it running).
    package mutating func signal(_ interrupt: Interrupt) -> [Action] {
        if case .draining(let code) = state {
            // Only the output of an ended job is left: stop waiting for a reader that does not read.
            state = .finished(code)
            return [.finish(code)]
        }
        guard isLive else { return [] }
        if configuration.arrayIndices != nil, let arrayID = jobs[0].jobID, jobs.count > 1 {
            return cancelArray(arrayID, interrupt)
        }
        guard isExec else {
            cancelRequested = true
            var actions: [Action] = [.status(.note("cancelling \(jobs.compactMap(\.jobID).count) jobs…"))]
            for (index, job) in jobs.enumerated() where job.code == nil && state == .open {
                if let jobID = job.jobID { actions.append(.send(.cancel(job: index, jobID: jobID))) }
            }
            return actions
        }
        guard let jobID = jobs[0].jobID else {
            if jobs[0].submitSent && mode != .dry && !cancelWhenSubmitted {
                // The submission is on its way: the job may exist any moment; cancel it as soon as it does.
                cancelWhenSubmitted = true
                interrupts += 1
                return [
                    .status(
                        .warning(
                            "interrupted while submitting: the job will be cancelled as soon as the scheduler accepts it"
                        )
                    )
                ]
            }
            return [.status(.warning("interrupted before the job was submitted"))] + finishing(ExitCodes.interrupted)
        }
        if isAttach {
            // Attaching only watches: Ctrl-C stops watching, never cancels someone's job by surprise.
            return [
                .status(
                    .detached(
                        jobID: jobID,
                        message: "stopped following job \(jobID); it keeps running (`qxub cancel \(jobID)` cancels it)"
                    )
                )
            ] + finishing(ExitCodes.interrupted)
        }
        interrupts += 1
        if interrupts > 1 {
            return [
                .status(
                    .detached(
                        jobID: jobID,
                        message:
                            "stopped waiting for job \(jobID): its cancel was requested but not yet confirmed, so it may still be running; `qxub status \(jobID)` shows where it is, `qxub cancel \(jobID)` cancels it"
                    )
                )
            ] + finishing(ExitCodes.interrupted)
        }
        if interrupt != .interrupt {
            return [
                .status(
                    .detached(
                        jobID: jobID,
                        message:
                            "left job \(jobID) running; follow it with `qxub attach \(jobID)` or cancel it with `qxub cancel \(jobID)`"
                    )
                )
            ] + finishing(ExitCodes.interrupted)
        }
        cancelRequested = true
        // Down or still starting, the session gets the cancel when it is ready (see ready).
        return [.status(.cancelling(jobID: jobID))] + (state == .open ? [.send(.cancel(job: 0, jobID: jobID))] : [])
    }

    /// Bytes queued for our stdout and stderr changed: above the limit the jobs' watches are paused (the agent
    /// keeps the files); once everything is written they resume from their offsets.
    package mutating func outputBacklog(_ bytes: Int) -> [Action] {
        backlog = bytes
        if bytes == 0, case .draining(let code) = state {
            state = .finished(code)
            return [.finish(code)]
        }
        guard isLive else { return [] }
        var actions: [Action] = []
        if bytes > configuration.outputBacklogLimit && !outputStalled {
            outputStalled = true
            for index in jobs.indices where jobs[index].watching {
                jobs[index].watching = false
                jobs[index].paused = true
                if state == .open, let jobID = jobs[index].jobID {
                    actions.append(.send(.unwatch(job: index, jobID: jobID)))
                }
            }
        } else if bytes == 0 && outputStalled {
            outputStalled = false
            for index in jobs.indices where jobs[index].paused && jobs[index].code == nil {
                jobs[index].paused = false
                if state == .open { actions += watch(index) }
            }
        }
        return actions
    }

    /// Whoever read our stdout has gone (`qxub exec … | head -2`): following on would only discard the job's
    /// output, so stop at once, as a Unix tool on a broken pipe does, and leave the job running. (`qxub batch`
    /// follows its jobs to their ends and summary regardless.)
    package mutating func stdoutClosed() -> [Action] {
        switch state {
        case .finished: return []
        case .draining, .connecting, .open, .waitingToReconnect: break
        }
        guard isExec, let jobID = jobs[0].jobID else { return [] }
        let message =
            cancelRequested
            ? "stdout was closed; stopped waiting for job \(jobID): its cancel was requested but not yet confirmed, "
                + "so it may still be running; `qxub status \(jobID)\(platformOption)` shows where it is"
            : "stdout was closed; stopped following job \(jobID), which keeps running: "
                + "`qxub attach \(jobID)\(platformOption)` follows it, `qxub cancel \(jobID)\(platformOption)` cancels it"
        state = .finished(ExitCodes.stdoutClosed)
        return [
            .log("job \(jobID): stdout closed (EPIPE); stopped following, the job keeps running"),
            .status(.detached(jobID: jobID, message: message)),
            .finish(ExitCodes.stdoutClosed),
        ]
    }

    // MARK: - Helpers

    private mutating func submit(_ index: Int, spec: JobSpec, token: String) -> Action {
        jobs[index].submitSent = true
        jobs[index].awaitingAnswer = true
        return .send(.submit(job: index, spec: spec, token: token, dryRun: mode == .dry))
    }

    /// Watches job `index` from its offsets, unless our stdout is behind (then it waits, paused).
    private mutating func watch(_ index: Int) -> [Action] {
        guard let jobID = jobs[index].jobID else { return [] }
        if outputStalled {
            jobs[index].paused = true
            return []
        }
        jobs[index].watching = true
        let offsets = jobs[index].offsets
        // Attaching to a job that turns out to be interactive: its terminal's recent output, not all of it (the
        // agent applies the tail to interactive jobs only).
        let tail = isAttach && offsets[.stdout] == 0 && mode == .follow ? configuration.terminalReplay : 0
        var actions: [Action] = [
            .send(
                .watch(
                    job: index,
                    jobID: jobID,
                    stdoutOffset: offsets[.stdout] ?? 0,
                    stderrOffset: offsets[.stderr] ?? 0,
                    joblog: configuration.joblog,
                    stdoutTail: tail
                )
            )
        ]
        if terminalTaken {
            // The job's terminal may have another size than ours now, and keys typed meanwhile go after.
            if let terminalSize {
                actions.append(
                    .send(.terminalResize(job: index, rows: terminalSize.rows, columns: terminalSize.columns))
                )
            }
            if !pendingInput.isEmpty {
                actions.append(.send(.terminalInput(job: index, data: pendingInput)))
                pendingInput = []
            }
        }
        return actions
    }

    private mutating func fail(_ error: ClientError) -> [Action] {
        releaseTerminal() + [.fail(error)] + finishing(error.exitCode)
    }

    /// Our terminal back, if the job had it (before any line of ours is printed).
    private mutating func releaseTerminal() -> [Action] {
        guard terminalTaken else { return [] }
        terminalTaken = false
        return [.terminal(.release)]
    }

    /// Ends with `code` once the output still queued is written.
    private mutating func finishing(_ code: Int32) -> [Action] {
        guard isLive else { return [] }
        let release = releaseTerminal()
        if backlog > 0 {
            state = .draining(code)
            return release
        }
        state = .finished(code)
        return release + [.finish(code)]
    }

    private mutating func jobEnded() -> [Action] {
        guard jobs.allSatisfy({ $0.code != nil }) else { return [] }
        if configuration.arrayIndices != nil {
            // Cancelled through qxub: the array ends as a cancelled job does, whatever its subjobs' statuses.
            let code =
                cancelRequested ? ExitCodes.interrupted : jobs.lazy.compactMap(\.code).first { $0 != 0 } ?? 0
            // The history holds the array (not its subjobs): it ends with the status qxub exits with.
            let record: [Action] = jobs[0].jobID.map { [.recordEnd(job: 0, jobID: $0, code: code)] } ?? []
            return record + finishing(code)
        }
        return finishing(failures)
    }

    /// The array job is submitted: it stands for its subjobs from now on (one job each, tagged with its index,
    /// watched as `qxub attach ID[i]` would), and is itself done.
    private mutating func followSubjobs(of arrayID: String, indices: [Int]) -> [Action] {
        jobs[0].code = 0
        let quiet = mode == .quiet
        for arrayIndex in indices {
            jobs.append(
                Job(
                    start: .attach(jobID: ArrayRange.subjobID(of: arrayID, index: arrayIndex)),
                    sink: OutputSink(quiet ? .silent : .tagged(number: arrayIndex))
                )
            )
        }
        var actions: [Action] = [.status(.note("submitted array job \(arrayID): \(indices.count) subjobs"))]
        for index in jobs.indices.dropFirst() { actions += watch(index) }
        return actions + arrayProgress()
    }

    /// Ctrl-C while following an array: one cancel of the whole array (the scheduler's `qdel ID[]`/`scancel
    /// ID`, the local agent's every subjob), sent again on every new session until the subjobs end; qxub then
    /// exits 130 as a cancelled job does. A second signal, or SIGTERM/SIGHUP, stops following at once and
    /// leaves what runs running.
    private mutating func cancelArray(_ arrayID: String, _ interrupt: Interrupt) -> [Action] {
        interrupts += 1
        if interrupt != .interrupt && !cancelRequested {
            return [
                .status(
                    .note(
                        "left array job \(arrayID) running; cancel it with `qxub cancel \(arrayID)\(platformOption)`"
                    )
                )
            ] + finishing(ExitCodes.interrupted)
        }
        if interrupts > 1 || cancelRequested {
            return [
                .status(
                    .note(
                        "stopped waiting for array job \(arrayID): its cancel was requested but not yet confirmed, so subjobs may still be running; `qxub cancel \(arrayID)\(platformOption)` cancels them"
                    )
                )
            ] + finishing(ExitCodes.interrupted)
        }
        cancelRequested = true
        return [.status(.note("cancelling array job \(arrayID)… (press Ctrl-C again to leave it running)"))]
            + (state == .open ? [.send(.cancel(job: 0, jobID: arrayID))] : [])
    }

    /// The array's status line, when a count changed.
    private mutating func arrayProgress() -> [Action] {
        guard configuration.arrayIndices != nil, let arrayID = jobs[0].jobID, jobs.count > 1 else { return [] }
        let progress = ArrayProgress(
            arrayID: arrayID,
            subjobs: jobs.dropFirst().map { $0.code.map { .ended(code: $0) } ?? .waiting($0.phase) }
        )
        let line = progress.line
        guard line != arrayLine else { return [] }
        arrayLine = line
        return [.status(.progress(line))]
    }

    /// `qxub batch`'s exit status: the number of jobs that did not succeed, at most 100.
    private var failures: Int32 {
        Int32(min(100, jobs.filter { ($0.code ?? 0) != 0 }.count))
    }
}
