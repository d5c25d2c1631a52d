import QxubProtocol
import QxubSystem

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The warm session of one remote platform, shared by the user's qxub processes on this machine
/// (`qxub session serve`): one agent session over ssh, served on a unix socket in the private control
/// directory to local clients that speak the agent's protocol to it. ``HolderRouter`` keeps each client's
/// requests, replies and job output apart; this class only does the I/O.
///
/// It listens only once the agent has said hello, so a client never waits on a holder that has nothing to
/// offer. It ends when no client has been connected for ``persist`` seconds, on SIGTERM (`qxub session
/// stop`), and when the agent's session ends (the next qxub starts a new holder after its direct session).
package final class SessionHolder {
    package let loop: EventLoop
    private let endpoint: AgentEndpoint
    private let socketPath: String
    /// Seconds with no client before the holder exits.
    package let persist: Double
    private var agent: AgentConnection?
    private var router = HolderRouter()
    private var listener: UnixSocket.BoundListener?
    private var clients: [HolderRouter.Client: ClientLink] = [:]
    private var nextClient = 1
    private var idleTimer: Int?
    private var clientHello: Hello?
    private var signalFD: Int32 = -1
    /// Why the holder ended (for its log); nil while it runs.
    package private(set) var endedBecause: String?
    /// A client whose unsent output passes this many bytes is dropped (it stopped reading); it reconnects
    /// and resumes from its byte offsets, while the holder's memory stays bounded.
    package var clientBacklogLimit = 64 << 20
    /// Forks a warm qxub for a ``WarmStart`` request (set by `qxub session serve`; nil: no warm socket).
    package var warmFork: ((WarmStart.Request, [Int32], Int32) -> pid_t?)?
    private var warmStart: WarmStartServer?

    /// One local client: its socket, its protocol endpoint, its queued bytes.
    private final class ClientLink {
        let fd: Int32
        var endpoint: ProtocolEndpoint
        let outbox: OutboxWriter
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)

        init(fd: Int32, endpoint: ProtocolEndpoint, outbox: OutboxWriter) {
            self.fd = fd
            self.endpoint = endpoint
            self.outbox = outbox
        }
    }

    package init(endpoint: AgentEndpoint, socketPath: String, persist: Double, loop: EventLoop = EventLoop()) {
        var endpoint = endpoint
        endpoint.usesHolder = false
        self.endpoint = endpoint
        self.socketPath = socketPath
        self.persist = persist
        self.loop = loop
    }

    /// Opens the agent session and serves until the holder ends; returns the exit status.
    package func run() -> Int32 {
        ignoreBrokenPipes()
        // One holder per socket: held for the holder's life, dropped by the kernel however it ends.
        let lock = open(socketPath + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lock >= 0, flock(lock, LOCK_EX | LOCK_NB) == 0 else {
            log("another holder serves \(socketPath): not started")
            if lock >= 0 { FileDescriptor.close(lock) }
            return 0
        }
        defer { FileDescriptor.close(lock) }
        // Its pid, for `HolderClient.stop` while this holder is still starting (not listening yet).
        ftruncate(lock, 0)
        try? FileDescriptor.writeAll(lock, "\(getpid())\n")
        if let remote = endpoint.platform.remote {
            // Only an established master is used: nothing here may prompt (there is no terminal to answer).
            let launcher = SSHLauncher(platform: endpoint.platform.name, remote: remote)
            let controlPath: String?
            do { controlPath = try launcher.controlPath() } catch {
                log("no ssh control directory: \(error.message)")
                return 1
            }
            if let controlPath, !SSHLauncher.socketIsLive(controlPath) {
                log("no live ssh master for \(endpoint.platform.name): not started")
                return 1
            }
        }
        if let fd = try? SignalPipe.install([SIGTERM, SIGINT, SIGHUP]) {
            signalFD = fd
            loop.setReadable(fd) { [unowned self] in
                let signals = SignalPipe.drain()
                if let signal = signals.first { end("signal \(signal)") }
            }
        }
        do {
            let agent = try endpoint.connect(loop: loop, heartbeat: true)
            self.agent = agent
            agent.onEvent = { [unowned self] event in agentEvent(event) }
            agent.onClose = { [unowned self] error in
                end("the agent session ended: \(error?.message ?? self.agent?.endReason ?? "closed")")
            }
        } catch {
            log("cannot open the agent session: \(error.message)")
            return 1
        }
        do { try loop.run() } catch { end("the event loop failed: \(error)") }
        return 0
    }

    // MARK: - The agent

    private func agentEvent(_ event: ProtocolEndpoint.Event) {
        switch event {
        case .ready(let negotiation):
            var hello = negotiation.peer
            // Clients on this machine: compressing a unix socket costs CPU and saves nothing.
            hello.capabilities.removeAll { $0 == ProtocolConstants.capabilityDeflate }
            hello.versions = negotiation.version...negotiation.version
            clientHello = hello
            startListening()
        case .message(let channel, let message):
            perform(router.fromAgent(message, channel: channel))
        case .stray(let bytes):
            log("the login printed \(bytes.count) bytes before the agent: \(EscapedBytes(bytes, limit: 120))")
        case .malformed(_, let type, _, let error):
            log("the agent sent a \(type) that does not decode: \(error)")
        }
    }

    private func startListening() {
        // A socket file left by a holder that died is replaced: a live holder holds our lock.
        let listener: UnixSocket.BoundListener
        do {
            listener = try UnixSocket.BoundListener.bind(socketPath)
        } catch {
            return end("cannot listen on \(socketPath): \(error)")
        }
        self.listener = listener
        loop.setReadable(listener.fd) { [unowned self] in acceptClients(listener.fd) }
        startWarmStart()
        log("serving \(endpoint.platform.name) on \(socketPath) (exits after \(Int(persist)) s without a client)")
        armIdleTimer()
    }

    /// The warm socket beside the holder's: qxub processes of this build hand their command to a fork of this
    /// process, which has already paid for loading and for the argument parser's reflection.
    private func startWarmStart() {
        guard let warmFork, let identity = WarmStart.executableIdentity() else { return }
        let path =
            FileSystem.directoryName(socketPath) + "/" + WarmStart.socketName(platform: endpoint.platform.name)
        let server = WarmStartServer(
            loop: loop,
            socketPath: path,
            identity: identity,
            log: { [unowned self] in log($0) }
        ) {
            request,
            descriptors,
            connection in warmFork(request, descriptors, connection)
        }
        server.onChildrenEnded = { [unowned self] in
            if endedBecause != nil { return loop.stop() }
            if clients.isEmpty { armIdleTimer() }
        }
        do {
            try server.start()
            warmStart = server
        } catch {
            log("no warm start: cannot listen on \(path): \(error)")
        }
    }

    // MARK: - Clients

    private func acceptClients(_ listener: Int32) {
        while let fd = UnixSocket.accept(listener) {
            let peer = PeerCredentials.of(fd)
            guard PeerCredentials.admits(peer, ownUserID: getuid()) else {
                log("refused a connection from \(peer.map { "uid \($0.userID) (pid \($0.pid))" } ?? "an unknown peer")")
                FileDescriptor.close(fd)
                continue
            }
            guard let clientHello, (try? FileDescriptor.setNonBlocking(fd)) != nil else {
                FileDescriptor.close(fd)
                continue
            }
            let id = nextClient
            nextClient += 1
            let outbox = OutboxWriter(loop: loop, fd: fd)
            outbox.onError = { [unowned self] _ in drop(id, "its socket failed") }
            let link = ClientLink(
                fd: fd,
                endpoint: ProtocolEndpoint(hello: clientHello, preambleLimit: 0),
                outbox: outbox
            )
            outbox.enqueue(link.endpoint.start())
            clients[id] = link
            loop.setReadable(fd) { [unowned self] in readClient(id) }
            cancelIdleTimer()
        }
    }

    private func readClient(_ id: HolderRouter.Client) {
        while let link = clients[id] {
            let outcome: FileDescriptor.ReadResult
            do {
                outcome = try link.buffer.withUnsafeMutableBytes { try FileDescriptor.read(link.fd, into: $0) }
            } catch {
                return drop(id, "reading failed: \(error)")
            }
            switch outcome {
            case .wouldBlock: return
            case .endOfFile: return drop(id, nil)
            case .bytes(let count):
                var events: [ProtocolEndpoint.Event] = []
                do {
                    try link.endpoint.receive(link.buffer[0..<count]) { events.append($0) }
                } catch {
                    for event in events { clientEvent(id, event) }
                    return drop(id, "\(error)")
                }
                for event in events where clients[id] != nil { clientEvent(id, event) }
            }
        }
    }

    private func clientEvent(_ id: HolderRouter.Client, _ event: ProtocolEndpoint.Event) {
        switch event {
        case .ready:
            router.clientJoined(id)
        case .message(_, .goodbye):
            drop(id, nil)
        case .message(let channel, let message):
            perform(router.fromClient(id, message, channel: channel))
        case .malformed(_, let type, let requestID, let error):
            perform(router.malformed(id, type: type, requestID: requestID, error: error))
        case .stray:
            break
        }
    }

    private func perform(_ actions: [HolderRouter.Action]) {
        for action in actions {
            switch action {
            case .toAgent(let message, let channel):
                agent?.send(message, channel: channel)
            case .toClient(let id, let message, let channel):
                guard let link = clients[id] else { continue }
                do {
                    var bytes: [UInt8] = []
                    try link.endpoint.encode(message, channel: channel, into: &bytes)
                    link.outbox.enqueue(bytes)
                } catch {
                    drop(id, "cannot encode a \(message.frameType): \(error)")
                    continue
                }
                if link.outbox.pendingBytes > clientBacklogLimit {
                    drop(id, "it stopped reading (\(link.outbox.pendingBytes) bytes queued)")
                }
            }
        }
    }

    /// Ends a client's connection; the jobs it followed are unwatched on the agent's session.
    private func drop(_ id: HolderRouter.Client, _ reason: String?) {
        guard let link = clients.removeValue(forKey: id) else { return }
        if let reason { log("client \(id) dropped: \(reason)") }
        link.outbox.stop()
        loop.remove(link.fd)
        FileDescriptor.close(link.fd)
        perform(router.clientLeft(id))
        if clients.isEmpty && (warmStart?.runningChildren ?? 0) == 0 { armIdleTimer() }
    }

    // MARK: - Lifetime

    private func armIdleTimer() {
        cancelIdleTimer()
        idleTimer = loop.schedule(after: persist) { [weak self] in
            guard let self, self.clients.isEmpty, (self.warmStart?.runningChildren ?? 0) == 0 else { return }
            self.end("no client for \(Int(self.persist)) s")
        }
    }

    private func cancelIdleTimer() {
        if let idleTimer { loop.cancelTimer(idleTimer) }
        idleTimer = nil
    }

    private func end(_ reason: String) {
        guard endedBecause == nil else { return }
        endedBecause = reason
        log("ending: \(reason)")
        cancelIdleTimer()
        removeSocket()
        for id in clients.keys.sorted() { drop(id, nil) }
        router.agentLost()
        agent?.close()
        if signalFD >= 0 { loop.remove(signalFD) }
        warmStart?.stopListening()
        if let running = warmStart?.runningChildren, running > 0 {
            // Their qxub wait for their exit status, which only this process (their parent) can read.
            log("waiting for \(running) warm qxub process(es) to end")
            return
        }
        loop.stop()
    }

    /// Stops listening; removes the socket file if it is still the one we bound (not a newer holder's).
    private func removeSocket() {
        guard let listener else { return }
        loop.remove(listener.fd)
        listener.close()
        self.listener = nil
    }

    private func log(_ text: String) {
        try? FileDescriptor.writeAll(2, "\(LocalTime.logStamp()) [\(getpid())] \(text)\n")
    }
}
