import QxubProtocol
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// `qxub batch`: many jobs submitted and followed over one agent session, each on its own channel.
///
/// Output lines are tagged with the job's number (`[3] …`) and written whole, so lines of different jobs
/// never mix; at the end a summary goes to stderr. The exit status is the number of jobs that did not
/// succeed (at most 100), 0 when all did.
public final class BatchSession {
    public struct Outcome: Sendable {
        public var jobID: String?
        public var code: Int32?
        public var message: String?
    }

    private let loop = EventLoop()
    private var connection: AgentConnection
    private let endpoint: AgentEndpoint
    private var retriedStall = false
    /// Delays between reconnection attempts (seconds), as for `qxub exec`.
    public var reconnectDelays: [Double] = [1, 2, 4, 8, 15]
    private var reconnectAttempts = 0
    private var cancelRequested = false
    private let specs: [JobSpec]
    /// One per job, sent with every attempt of its submission (see `Submit.token`).
    private let tokens: [String]
    /// Jobs whose submission has been sent at least once.
    private var submitSent: Set<Int> = []
    private let terse: Bool
    private var requestToIndex: [UInt32: Int] = [:]
    private var outcomes: [Outcome]
    private var pending: [Int: [Output.Stream: [UInt8]]] = [:]
    private var written: [Int: [Output.Stream: UInt64]] = [:]
    private var finished = 0
    private var exitCode: Int32?
    private var signalFD: Int32 = -1
    public var onMessage: (String) -> Void = { _ in }
    /// Where submissions and job ends are recorded (best effort).
    public var history: HistoryStore?
    private let platformName: String

    public init(endpoint: AgentEndpoint, specs: [JobSpec], terse: Bool) throws(ClientError) {
        self.specs = specs
        self.tokens = specs.map { _ in Submit.newToken() }
        self.terse = terse
        self.outcomes = Array(repeating: Outcome(), count: specs.count)
        self.platformName = endpoint.platform.name
        self.endpoint = endpoint
        self.connection = try endpoint.connect(loop: loop)
    }

    /// The per-job outcomes, in input order (after ``run()``).
    public var results: [Outcome] { outcomes }

    public func run() -> Int32 {
        wire()
        if !terse, let fd = try? SignalPipe.install([SIGINT]) {
            signalFD = fd
            loop.setReadable(fd) { [unowned self] in
                _ = SignalPipe.drain()
                cancelAll()
            }
        }
        try? loop.run()
        if signalFD >= 0 {
            loop.remove(signalFD)
            SignalPipe.restoreDefault([SIGINT])
        }
        return exitCode ?? ExitCodes.internalError
    }

    private func wire() {
        connection.onEvent = { [unowned self] event in handle(event) }
        connection.onClose = { [unowned self] error in
            guard exitCode == nil else { return }
            if connection.stalled && !retriedStall {
                // The session never started (a dead ssh master, typically): nothing was submitted yet.
                retriedStall = true
                onMessage("\(error?.message ?? "the session stalled"); reconnecting")
                do throws(ClientError) {
                    connection = try endpoint.reconnect(replacing: connection) { [unowned self] in onMessage($0) }
                    return wire()
                } catch {
                    onMessage(error.message)
                    return finish(error.exitCode)
                }
            }
            let reason = error?.message ?? connection.endReason
            if reconnectAttempts < reconnectDelays.count {
                // The jobs run on: reconnect, then watch each again from its offsets (nothing lost, nothing
                // twice) and ask again for the submissions that got no answer (their tokens find their jobs).
                let delay = reconnectDelays[reconnectAttempts]
                reconnectAttempts += 1
                onMessage(
                    "lost the connection (\(reason)); reconnecting in \(Int(delay)) s (attempt \(reconnectAttempts))"
                )
                loop.schedule(after: delay) { [weak self] in self?.reconnect() }
                return
            }
            let running = outcomes.enumerated().filter { $0.element.jobID != nil && $0.element.code == nil }.map {
                $0.element.jobID!
            }
            onMessage(
                "lost the connection (\(reason))"
                    + (running.isEmpty
                        ? ""
                        : "; still running: " + running.joined(separator: " ")
                            + " (`qxub attach ID\(endpoint.platform.remote == nil ? "" : " --platform " + platformName)` follows one)")
            )
            finish(ExitCodes.connectionLost)
        }
    }

    private func reconnect() {
        guard exitCode == nil else { return }
        do throws(ClientError) {
            connection = try endpoint.reconnect(replacing: connection) { [unowned self] in onMessage($0) }
            wire()
        } catch {
            connection.onClose(error)
        }
    }

    private func handle(_ event: ProtocolEndpoint.Event) {
        switch event {
        case .ready:
            if reconnectAttempts > 0 { onMessage("reconnected") }
            reconnectAttempts = 0
            // Request ids start again with each connection: answers to the old ones can no longer come.
            requestToIndex.removeAll()
            let honoursTokens =
                connection.negotiation?.peer.capabilities.contains(ProtocolConstants.capabilitySubmitToken) == true
            // Every submission goes out at once: the agent answers them as the scheduler accepts them. After
            // a reconnection, jobs with an id are watched again from what was written, the others asked for
            // again with their tokens.
            for (index, spec) in specs.enumerated() where outcomes[index].code == nil {
                if let jobID = outcomes[index].jobID {
                    guard !terse else { continue }
                    let offsets = written[index] ?? [:]
                    connection.send(
                        .watch(
                            Watch(
                                requestID: connection.requestID(),
                                jobID: jobID,
                                stdoutOffset: offsets[.stdout] ?? 0,
                                stderrOffset: offsets[.stderr] ?? 0
                            )
                        ),
                        channel: UInt32(index + 1)
                    )
                    if cancelRequested {
                        connection.send(.cancel(JobRequest(requestID: connection.requestID(), jobID: jobID)))
                    }
                } else if (cancelRequested && !submitSent.contains(index))
                    || (submitSent.contains(index) && !honoursTokens)
                {
                    // Interrupted before it was asked for; or asked for, unanswered, and this agent cannot
                    // tell whether it made the job (asking again could make it twice).
                    outcomes[index].code = cancelRequested ? ExitCodes.interrupted : ExitCodes.connectionLost
                    outcomes[index].message =
                        cancelRequested
                        ? "not submitted: interrupted"
                        : "the answer to its submission was lost; it may have been submitted"
                    if !cancelRequested {
                        onMessage(
                            "[\(index + 1)] the answer to its submission was lost; it may have been submitted: `qxub history --remote` shows it"
                        )
                    }
                    jobEnded()
                } else {
                    // Asked for again with its token: the agent answers with the job it made, if it made one
                    // (and after a Ctrl-C, the answer is cancelled at once).
                    let id = connection.requestID()
                    requestToIndex[id] = index
                    submitSent.insert(index)
                    connection.send(.submit(Submit(requestID: id, spec: spec, token: tokens[index])))
                }
            }
        case .message(let channel, let message):
            handle(message, channel: channel)
        case .stray(let bytes):
            onMessage(
                "warning: the remote shell printed \(bytes.count) bytes before the agent started: \(EscapedBytes(bytes, limit: 80))"
            )
        case .malformed:
            break
        }
    }

    private func handle(_ message: Message, channel: UInt32) {
        let index = Int(channel) - 1
        switch message {
        case .submitted(let submitted):
            guard let index = requestToIndex[submitted.requestID], outcomes[index].jobID == nil else { return }
            outcomes[index].jobID = submitted.jobID
            if cancelRequested {
                connection.send(.cancel(JobRequest(requestID: connection.requestID(), jobID: submitted.jobID)))
            }
            if index == 0 {
                for warning in submitted.warnings { onMessage("warning: \(warning.escapingControlCharacters)") }
            }
            if case .shell(let line) = specs[index].command {
                try? history?.recordSubmission(
                    jobID: submitted.jobID,
                    platform: platformName,
                    backend: submitted.backend,
                    name: specs[index].name,
                    command: line,
                    workingDirectory: specs[index].workingDirectory,
                    stateDirectory: submitted.stateDirectory
                )
            }
            if terse {
                try? FileDescriptor.writeAll(1, submitted.jobID + "\n")
                if outcomes.allSatisfy({ $0.jobID != nil || $0.code != nil }) { finish(failures()) }
                return
            }
            written[index] = [.stdout: 0, .stderr: 0]
            connection.send(
                .watch(Watch(requestID: connection.requestID(), jobID: submitted.jobID)),
                channel: UInt32(index + 1)
            )
        case .error(let message):
            let error = ClientError(message)
            guard let index = requestToIndex[message.requestID] else {
                onMessage("error: \(error.message)")
                return
            }
            outcomes[index].code = error.exitCode
            outcomes[index].message = error.message
            onMessage("[\(index + 1)] not submitted: \(error.message)")
            jobEnded()
        case .output(let output) where outcomes.indices.contains(index):
            deliver(output, index: index)
        case .jobEnd(let termination) where outcomes.indices.contains(index):
            flush(index)
            let (code, explanation) = ExitCodes.exit(for: termination)
            outcomes[index].code = code
            outcomes[index].message = explanation
            if let jobID = outcomes[index].jobID {
                try? history?.recordEnd(
                    jobID: jobID,
                    platform: platformName,
                    exitCode: code,
                    status: code == 0 ? "succeeded" : "failed"
                )
            }
            jobEnded()
        default:
            break
        }
    }

    private func deliver(_ output: Output, index: Int) {
        let already = written[index]?[output.stream] ?? 0
        guard output.offset + UInt64(output.data.count) > already else { return }
        let skip = Int(already > output.offset ? already - output.offset : 0)
        written[index]?[output.stream] = output.offset + UInt64(output.data.count)
        var buffer = pending[index]?[output.stream] ?? []
        buffer += output.data[skip...]
        // Whole lines only: a job's partial line waits for its end of line (or the job's end).
        if let lastNewline = buffer.lastIndex(of: 0x0A) {
            emit(Array(buffer[...lastNewline]), index: index, stream: output.stream)
            buffer.removeSubrange(...lastNewline)
        }
        pending[index, default: [:]][output.stream] = buffer
    }

    private func flush(_ index: Int) {
        for stream in [Output.Stream.stdout, .stderr] {
            if let rest = pending[index]?[stream], !rest.isEmpty { emit(rest + [0x0A], index: index, stream: stream) }
        }
        pending[index] = nil
    }

    private func emit(_ lines: [UInt8], index: Int, stream: Output.Stream) {
        let tag = Array("[\(index + 1)] ".utf8)
        var tagged: [UInt8] = []
        tagged.reserveCapacity(lines.count + 16)
        var start = 0
        for (position, byte) in lines.enumerated() where byte == 0x0A {
            tagged += tag
            tagged += lines[start...position]
            start = position + 1
        }
        try? FileDescriptor.writeAll(stream == .stdout ? 1 : 2, tagged)
    }

    private func jobEnded() {
        finished += 1
        if finished == specs.count { finish(failures()) }
    }

    private func failures() -> Int32 {
        Int32(min(100, outcomes.filter { ($0.code ?? 0) != 0 }.count))
    }

    private func cancelAll() {
        cancelRequested = true
        onMessage("cancelling \(outcomes.compactMap(\.jobID).count) jobs…")
        for outcome in outcomes where outcome.code == nil {
            if let jobID = outcome.jobID {
                connection.send(.cancel(JobRequest(requestID: connection.requestID(), jobID: jobID)))
            }
        }
    }

    private func finish(_ code: Int32) {
        guard exitCode == nil else { return }
        exitCode = code
        connection.close()
        loop.stop()
    }
}
