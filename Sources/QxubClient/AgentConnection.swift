import QxubProtocol
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// The client's end of one agent session: a child process (the local agent, or `ssh` running it on a
/// cluster) whose stdin and stdout carry the protocol, or a unix socket to the platform's session holder
/// (``SessionHolder``), which speaks the same protocol. Runs on an ``EventLoop``; never blocks it.
package final class AgentConnection {
    package let loop: EventLoop
    /// The process of the current try; nil for a session through a holder's socket.
    private var child: ChildProcess?
    /// Where the agent's bytes are read and ours written: the child's stdout and stdin, or the socket twice.
    private var readFD: Int32 = -1
    private var writeFD: Int32 = -1
    /// The session goes through the platform's session holder (a unix socket), not a process of ours.
    package private(set) var viaHolder = false
    private var holderPID: pid_t = 0
    /// Called once, when the agent's hello has arrived (a direct session then starts a holder).
    package var onReady: (() -> Void)?
    private var endpoint: ProtocolEndpoint
    private var outbox: OutboxWriter!
    private var readBuffer = [UInt8](repeating: 0, count: 64 * 1024)
    private var closed = false
    /// Bytes read from and written to the agent's pipes (the wire, compressed).
    package private(set) var bytesReceived = 0
    package var bytesSent: Int { outbox.bytesWritten }
    /// What the agent said, in order.
    package var onEvent: (ProtocolEndpoint.Event) -> Void = { _ in }
    /// The session ended: nil when the agent closed cleanly.
    package var onClose: (ClientError?) -> Void = { _ in }
    /// Describes the far end in errors ("the local agent", "gadi").
    package let peerName: String
    /// The remote platform's name, for the commands that fix things (nil for the local agent).
    package let platformName: String?
    /// The session never got the agent's hello in time: over ssh, the usual cause is a master connection
    /// whose network is gone (a laptop that slept, a changed network) while its socket still answers.
    package private(set) var stalled = false
    /// The session fell silent for three heartbeat intervals and was ended.
    package private(set) var silent = false
    /// This session runs ssh with `ControlPath=none`: the master of the user's own ssh config went silent
    /// earlier, and qxub never kills it (see ``AgentEndpoint/reconnect(replacing:heartbeat:notify:)``).
    package internal(set) var bypassesUserMaster = false
    /// What ended a session that closed without an error of its own, from its process's exit: the agent's
    /// goodbye, or ssh (or the local agent) killed, or ssh's lost connection.
    package private(set) var endReason = "the agent closed the session"
    /// The session stalled or fell silent: its ssh master is suspect (see ``AgentEndpoint/reconnect(replacing:heartbeat:)``).
    package var endedOnDeadConnection: Bool { stalled || silent }
    private var reaped = false
    private var helloTimer: Int?
    private var heartbeatTimer: Int?
    /// When the agent was last heard from, on the loop's clock (heartbeat silence is measured against it).
    private var lastHeard = 0.0
    private let command: [String]
    private let hello: Hello
    /// Tries again a session that ssh could not open (sshd refused it: MaxSessions, MaxStartups).
    private let retryPolicy: SessionRetryPolicy
    private var tries = 0
    private let firstTry: Double
    private var receivedThisTry = 0
    /// Set while a refused session waits for its next try.
    private var retryTimer: Int?
    /// When the agent process (or `ssh`) was spawned, and when the agent's hello arrived (monotonic).
    private var spawnedAt = 0.0
    private var helloAt: Double?
    /// Seconds from spawning the agent process (for a remote platform: `ssh` over the master, the login
    /// shell, the shim and the agent) to the agent's hello: the whole cost of starting a session. Nil
    /// before the hello.
    package var sessionStartSeconds: Double? { helloAt.map { $0 - spawnedAt } }

    /// How long a session waits for the agent's hello, and how often it pings.
    package struct Timing: Sendable, Equatable {
        /// Seconds to wait for the agent's hello (`QXUB_HELLO_TIMEOUT`, default 20): a login on a busy login
        /// node takes a few seconds; a dead connection takes forever.
        package var helloTimeout: Double
        /// Seconds between the pings of a `heartbeat` session (`QXUB_HEARTBEAT_INTERVAL`, default
        /// ``ProtocolConstants/heartbeatInterval``); a session silent for three of them is ended. Smaller
        /// values notice a hung connection sooner; larger ones than the default are refused (the agent's own
        /// silence limit is 90 s).
        package var heartbeatInterval: Double

        package init(helloTimeout: Double = 20, heartbeatInterval: Double = ProtocolConstants.heartbeatInterval) {
            self.helloTimeout = helloTimeout
            self.heartbeatInterval = heartbeatInterval
        }

        /// The timing `QXUB_HELLO_TIMEOUT` (above 0) and `QXUB_HEARTBEAT_INTERVAL` (0.1 to the default) ask
        /// for; a value that is not a number or out of range is ignored.
        package init(environment: (String) -> String?) {
            self.init(
                helloTimeout: environment("QXUB_HELLO_TIMEOUT").flatMap(Double.init).flatMap { $0 > 0 ? $0 : nil }
                    ?? 20,
                heartbeatInterval: environment("QXUB_HEARTBEAT_INTERVAL").flatMap(Double.init)
                    .flatMap { $0 >= 0.1 && $0 <= ProtocolConstants.heartbeatInterval ? $0 : nil }
                    ?? ProtocolConstants.heartbeatInterval
            )
        }
    }

    private let timing: Timing

    /// Starts `command` (for example `[agentPath, "serve"]`) and sends the magic and hello.
    /// - Parameters:
    ///   - timing: the hello timeout and the heartbeat interval.
    ///   - retryPolicy: for a remote platform, when a session that ssh could not open is tried again.
    package init(
        command: [String],
        peerName: String,
        platformName: String? = nil,
        loop: EventLoop,
        hello: Hello = AgentConnection.hello(),
        timing: Timing = Timing(),
        retryPolicy: SessionRetryPolicy = SessionRetryPolicy()
    ) throws {
        self.loop = loop
        self.peerName = peerName
        self.platformName = platformName
        self.command = command
        self.hello = hello
        self.timing = timing
        self.retryPolicy = retryPolicy
        self.firstTry = loop.now
        self.endpoint = ProtocolEndpoint(hello: hello, preambleLimit: ProtocolConstants.preambleScanLimit)
        ignoreBrokenPipes()
        try launch()
        if hello.capabilities.contains(ProtocolConstants.capabilityHeartbeat) { heartbeat() }
    }

    /// A session through the platform's session holder, whose hello was already exchanged (``HolderClient``
    /// did it within its short deadline). The events read with the hello (`.ready` first) are delivered from
    /// the loop, once the caller has set ``onEvent``.
    package init(
        holder: HolderClient.Connected,
        peerName: String,
        platformName: String?,
        loop: EventLoop,
        hello: Hello,
        timing: Timing = Timing()
    ) {
        self.loop = loop
        self.peerName = peerName
        self.platformName = platformName
        self.command = []
        self.hello = hello
        self.timing = timing
        self.retryPolicy = SessionRetryPolicy()
        self.firstTry = loop.now
        self.endpoint = holder.endpoint
        self.viaHolder = true
        self.holderPID = holder.pid
        ignoreBrokenPipes()
        tries = 1
        readFD = holder.fd
        writeFD = holder.fd
        reaped = true
        lastHeard = loop.now
        spawnedAt = loop.now
        helloAt = loop.now
        outbox = OutboxWriter(loop: loop, fd: writeFD)
        let early = holder.events
        loop.schedule(after: 0) { [weak self] in
            guard let self else { return }
            for event in early where !self.closed { self.onEvent(event) }
            guard !self.closed else { return }
            self.loop.setReadable(self.readFD) { [unowned self] in self.readAvailable() }
            // Bytes that came after the hello, before the loop watched the socket.
            self.readAvailable()
        }
        ClientLog.write("session with \(peerName): through the session holder (pid \(holder.pid))")
        if hello.capabilities.contains(ProtocolConstants.capabilityHeartbeat) { heartbeat() }
    }

    /// Starts one try: the process, a fresh protocol endpoint, the magic and hello, the hello timer.
    private func launch() throws(ClientError) {
        tries += 1
        receivedThisTry = 0
        lastHeard = loop.now
        endpoint = ProtocolEndpoint(hello: hello, preambleLimit: ProtocolConstants.preambleScanLimit)
        spawnedAt = loop.now
        do {
            // Its own process group: a Ctrl-C in the terminal reaches qxub alone, which turns it into a
            // cancel request; the agent must live on to carry it out.
            let child = try ChildProcess.spawn(
                command,
                stdin: .pipe,
                stdout: .pipe,
                stderr: .inherit,
                newProcessGroup: true
            )
            self.child = child
            readFD = child.stdout!
            writeFD = child.stdin!
            try FileDescriptor.setNonBlocking(writeFD)
            try FileDescriptor.setNonBlocking(readFD)
        } catch {
            throw ClientError(
                "cannot start \(command.first ?? "the agent"): \(error)",
                hint: "check that it is installed",
                exitCode: ExitCodes.unavailable
            )
        }
        // A failed write means the agent is gone; its stdout's end of file (and exit status) tell why.
        outbox = OutboxWriter(loop: loop, fd: writeFD)
        loop.setReadable(readFD) { [unowned self] in readAvailable() }
        enqueue(endpoint.start())
        let attempt = tries > 1 ? " (try \(tries))" : ""
        ClientLog.write("session with \(peerName): started \(command.joined(separator: " "))\(attempt)")
        let timeout = timing.helloTimeout
        helloTimer = loop.schedule(after: timeout) { [weak self] in
            guard let self, !self.closed, self.endpoint.negotiation == nil else { return }
            self.stalled = true
            self.child?.signal(SIGKILL)
            self.finish(
                ClientError(
                    "no answer from \(self.peerName) in \(Int(timeout)) s (QXUB_HELLO_TIMEOUT)"
                        + (self.platformName == nil
                            ? "" : ": the ssh connection is probably dead, or the login is slower than that"),
                    hint: (self.platformName.map {
                        "check that `ssh HOST true` works; `qxub doctor --platform \($0)` shows where it stops; "
                    } ?? "")
                        + "a slow login or agent start needs more time: set QXUB_HELLO_TIMEOUT=SECONDS (the default is 20)",
                    exitCode: ExitCodes.connectionLost
                )
            )
        }
    }

    /// The next try of a refused session, after its pause.
    private func retry() {
        retryTimer = nil
        guard !closed else { return }
        reaped = false
        do {
            try launch()
        } catch {
            stopTimers()
            closed = true
            return onClose(error)
        }
        // The pause stopped the heartbeat with the other timers; the hello promised it.
        if hello.capabilities.contains(ProtocolConstants.capabilityHeartbeat) { heartbeat() }
    }

    private func cancelHelloTimer() {
        if let helloTimer { loop.cancelTimer(helloTimer) }
        helloTimer = nil
    }

    private func stopTimers() {
        cancelHelloTimer()
        if let retryTimer { loop.cancelTimer(retryTimer) }
        retryTimer = nil
        if let heartbeatTimer { loop.cancelTimer(heartbeatTimer) }
        heartbeatTimer = nil
    }

    /// Keeps the promise of a hello that lists `heartbeat` (a ping every interval, so the agent can end a
    /// session whose client vanished), and ends a session from which nothing has come for three
    /// intervals (a sleeping laptop, a dropped network): it is then ``silent``.
    ///
    /// A silent session is finished here, not left to its process: over ssh, the session's mux client handed
    /// its pipes to the master (SCM_RIGHTS), so a hung master holds them open and no end of file would ever
    /// come. Our ends are closed, the mux client is killed, and the session ends as lost.
    private func heartbeat() {
        let interval = timing.heartbeatInterval
        heartbeatTimer = loop.schedule(after: interval) { [weak self] in
            guard let self, !self.closed else { return }
            if self.loop.now - self.lastHeard > 3 * interval {
                self.silent = true
                self.terminate()
                let limit = 3 * interval
                let seconds = limit == limit.rounded() ? "\(Int(limit))" : "\(limit)"
                return self.finish(
                    ClientError(
                        "nothing heard from \(self.peerName) for \(seconds) s: the connection went silent",
                        exitCode: ExitCodes.connectionLost
                    )
                )
            } else if self.endpoint.negotiation != nil {
                self.send(.ping(Ping(nonce: UInt64(max(0, self.loop.now) * 1000))))
            }
            self.heartbeat()
        }
    }

    /// The hello qxub sends.
    /// - Parameter heartbeat: promise pings every ``ProtocolConstants/heartbeatInterval`` (the agent then
    ///   ends the session after 90 s of silence); only sessions that really ping may promise it.
    /// - Parameter compression: offer deflate; not for the local agent (a pipe between two processes on one
    ///   machine gains nothing from it and pays its CPU).
    package static func hello(heartbeat: Bool = true, compression: Bool = true) -> Hello {
        Hello(
            software: "qxub \(QxubVersion.current)",
            capabilities: (compression ? [ProtocolConstants.capabilityDeflate] : [])
                + [ProtocolConstants.capabilitySplitReplies]
                + (heartbeat ? [ProtocolConstants.capabilityHeartbeat] : [])
                + (ClientLog.level > 0 ? [ProtocolConstants.capabilityVerbose] : []),
            platform: Environment.platform(),
            hostname: Environment.hostname()
        )
    }

    package var negotiation: Negotiation? { endpoint.negotiation }

    /// The session's process (the local agent, or `ssh`) of the current try; the holder's for a session
    /// through a holder.
    package var processID: pid_t { child?.pid ?? holderPID }

    /// The session has ended (closed by us, or lost).
    package var isClosed: Bool { closed }

    package func send(_ message: Message, channel: UInt32 = 0) {
        guard !closed else { return }
        do {
            var bytes: [UInt8] = []
            try endpoint.encode(message, channel: channel, into: &bytes)
            enqueue(bytes)
        } catch {
            finish(
                ClientError("cannot encode a \(message.frameType) message: \(error)", exitCode: ExitCodes.internalError)
            )
        }
    }

    /// Says goodbye, closes our end and waits (briefly) for the process; the agent exits when it reads
    /// end of file.
    package func close() {
        shutdown()
        if !reaped { reap(timeout: 2) }
    }

    /// Says goodbye and closes our end without waiting for the process to exit, so work of our own can
    /// overlap ssh's teardown; ``close()`` then reaps it.
    package func shutdown() {
        guard !closed else { return }
        if retryTimer != nil {
            // Between two tries: no process, no descriptors.
            stopTimers()
            closed = true
            return
        }
        stopTimers()
        send(.goodbye(Goodbye()))
        outbox.flush()
        outbox.stop()
        closed = true
        closeDescriptors()
    }

    /// Our ends of the session: the child's two pipes, or the holder's one socket.
    private func closeDescriptors() {
        loop.remove(readFD)
        loop.remove(writeFD)
        FileDescriptor.close(writeFD)
        if readFD != writeFD { FileDescriptor.close(readFD) }
    }

    /// Ends a session that was opened early and will not be used (qxub found a usage error while the agent
    /// started): says goodbye, closes our ends and kills the process at once. ``close()`` would wait up to 2 s
    /// for ssh and a login shell that may still be starting; nothing was asked of this session, so nothing is
    /// lost, and an agent that starts later finds its stdin ended and its stdout gone, and exits.
    package func abandon() {
        shutdown()
        guard !reaped, let child else { return }
        child.signal(SIGKILL)
        // Reaped as every session's process is: woken by SIGCHLD through the loop's watcher, and bounded.
        reap(timeout: 2)
    }

    /// Kills the agent process (when it no longer answers).
    package func terminate() {
        guard retryTimer == nil else { return }
        guard let child else {
            // A holder's session has no process of ours: ending it is closing the socket.
            if !closed { shutdown() }
            return
        }
        child.signal(SIGTERM)
    }

    // MARK: - I/O

    private func readAvailable() {
        while !closed {
            let outcome: FileDescriptor.ReadResult
            do {
                outcome = try readBuffer.withUnsafeMutableBytes { try FileDescriptor.read(readFD, into: $0) }
            } catch {
                return finish(
                    ClientError("reading from \(peerName) failed: \(error)", exitCode: ExitCodes.connectionLost)
                )
            }
            switch outcome {
            case .wouldBlock:
                return
            case .endOfFile:
                do {
                    try endpoint.finish()
                    finish(nil)
                } catch {
                    finish(describe(error))
                }
                return
            case .bytes(let count):
                bytesReceived += count
                receivedThisTry += count
                lastHeard = loop.now
                var events: [ProtocolEndpoint.Event] = []
                var failure: ProtocolError?
                do {
                    try endpoint.receive(readBuffer[0..<count]) { events.append($0) }
                } catch {
                    failure = error
                }
                if helloAt == nil, endpoint.negotiation != nil {
                    helloAt = loop.now
                    if let onReady {
                        self.onReady = nil
                        onReady()
                    }
                }
                if helloTimer != nil, endpoint.negotiation != nil { cancelHelloTimer() }
                for event in events where !closed { onEvent(event) }
                if let failure { return finish(describe(failure)) }
            }
        }
    }

    private func enqueue(_ bytes: [UInt8]) {
        outbox.enqueue(bytes)
    }

    private func finish(_ error: ClientError?) {
        guard !closed else { return }
        stopTimers()
        closed = true
        outbox.stop()
        closeDescriptors()
        if viaHolder {
            endReason = "the session holder closed the connection"
            ClientLog.write("session with \(peerName) through the holder ended: \(error?.message ?? endReason)")
            return onClose(error)
        }
        let exit = reap(timeout: 2)
        // ssh's own failure (a refused session, authentication, a dropped network), not the agent's absence:
        // nothing came back and nothing was sent but the hello, so another try is safe.
        let sshFailed =
            platformName != nil && negotiation == nil && !stalled && exit == .exited(255) && receivedThisTry == 0
        let elapsed = loop.now - firstTry
        if sshFailed, let pause = retryPolicy.pause(afterFailedTries: tries, elapsed: elapsed) {
            // sshd refuses sessions past MaxSessions and drops logins past MaxStartups: both pass soon.
            ClientLog.write(
                "session with \(peerName): ssh exit 255 before the hello (try \(tries)); next try in \(pause) s"
            )
            closed = false
            retryTimer = loop.schedule(after: pause) { [weak self] in self?.retry() }
            return
        }
        endReason = Self.endReason(exit, remote: platformName != nil, peerName: peerName)
        ClientLog.write("session with \(peerName) ended: \(error?.message ?? endReason)")
        var error = error
        if sshFailed, let platformName {
            // Offering to install the agent would not help.
            error = ClientError(
                "ssh could not open a session on \(peerName) (ssh exit 255, \(tries == 1 ? "1 try" : "\(tries) tries") in "
                    + "\(Int(elapsed.rounded())) s): sshd refused it or dropped the login (its MaxSessions or MaxStartups "
                    + "limit is reached), or ssh cannot log in",
                hint: "ssh's own message is above (and in ~/.local/state/qxub/ssh.log); for many jobs at once use "
                    + "`qxub batch FILE` or `qxub exec --terse … | qxub monitor`; `qxub doctor --platform \(platformName)` "
                    + "opens the same connection step by step",
                exitCode: ExitCodes.unavailable
            )
        } else if error == nil, let exit, exit != .exited(0), negotiation == nil {
            error = ClientError(
                "\(peerName) ended (\(exit)) before the session started",
                exitCode: ExitCodes.unavailable
            )
        }
        onClose(error)
    }

    /// Says what ended a session from its process's exit status. Over ssh, 255 is ssh's own failure: the
    /// connection dropped (its master was killed, the network went away) or the remote agent was killed
    /// (ssh cannot tell those apart).
    static func endReason(_ exit: ProcessExit?, remote: Bool, peerName: String) -> String {
        switch exit {
        case nil, .exited(0)?:
            return "the agent closed the session"
        case .signaled(let signal)?:
            return remote
                ? "ssh, which carried the session, was killed by signal \(signal)"
                : "the local agent was killed by signal \(signal)"
        case .exited(255)? where remote:
            return "ssh lost the connection to \(peerName) with exit status 255: its ssh master or the network went "
                + "away, or the agent was killed"
        case .exited(let code)?:
            return remote
                ? "the agent on \(peerName) ended with exit status \(code)"
                : "the local agent ended with exit status \(code)"
        }
    }

    /// Waits at most `timeout` seconds for the process to exit, woken by SIGCHLD (the agent and ssh exit
    /// within milliseconds of stdin closing: every millisecond counts at the end of `qxub exec --terse`),
    /// then kills it.
    @discardableResult
    private func reap(timeout: Double) -> ProcessExit? {
        reaped = true
        guard let child else { return nil }
        if let watcher = try? ChildWatcher.of(loop), let exit = watcher.waitForExit(child.pid, timeout: timeout) {
            return exit
        }
        child.signal(SIGKILL)
        return child.wait()
    }

    private var installHint: String {
        "run `qxub agent install" + (platformName.map { " --platform \($0)" } ?? "") + "`"
    }

    /// Turns protocol errors into sentences that name the likely cause and the fix.
    private func describe(_ error: ProtocolError) -> ClientError {
        switch error {
        case .preambleNotFound(let first, _):
            let text = String(decoding: first, as: UTF8.self)
            if let refusal = SSHLauncher.trustRefusal(text, platform: platformName) { return refusal }
            if text.containsText("qxub-no-proc: ") {
                // The shim's word: the static agent would abort ("Unable to obtain Swift runtime path").
                return ClientError(
                    "qxub-agent cannot start on \(peerName): /proc is not mounted there (a chroot or container without "
                        + "/proc), and the agent finds itself through /proc/self/exe",
                    hint: "mount /proc there (`mount -t proc proc /proc`), or log in where it is mounted",
                    exitCode: ExitCodes.unavailable
                )
            }
            if text.containsText("qxub-agent is not installed") || text.containsText("qxub-shim") {
                var error = ClientError(
                    "qxub-agent is not installed on \(peerName)",
                    hint: installHint,
                    exitCode: ExitCodes.unavailable
                )
                error.agentMissing = platformName != nil
                return error
            }
            return ClientError(
                "no qxub-agent answered on \(peerName); it printed \(EscapedBytes(first))",
                hint:
                    "a login file (~/.bashrc, ~/.cshrc, ~/.profile) may print text for non-interactive shells; guard it with `[ -t 1 ]` or `[[ $- == *i* ]]`",
                exitCode: ExitCodes.unavailable
            )
        case .versionMismatch(let local, let remote, let software):
            if remote.upperBound < local.lowerBound {
                return ClientError(
                    "\(peerName) runs an older agent (\(software), protocol \(remote.lowerBound)-\(remote.upperBound)); this qxub needs protocol \(local.lowerBound)-\(local.upperBound)",
                    hint: installHint,
                    exitCode: ExitCodes.unavailable
                )
            }
            return ClientError(
                "\(peerName) runs a newer agent (\(software), protocol \(remote.lowerBound)-\(remote.upperBound)) than this qxub understands (\(local.lowerBound)-\(local.upperBound))",
                hint: "upgrade qxub on this machine (install/install.sh)",
                exitCode: ExitCodes.unavailable
            )
        case .endedBeforeHello:
            let cause =
                platformName == nil ? "" : ": qxub-agent is probably not installed there (see the message above)"
            var error = ClientError(
                "\(peerName) closed the connection before the agent said hello\(cause)",
                hint: installHint,
                exitCode: ExitCodes.unavailable
            )
            error.agentMissing = platformName != nil
            return error
        default:
            return ClientError("the session with \(peerName) broke: \(error)", exitCode: ExitCodes.connectionLost)
        }
    }
}
