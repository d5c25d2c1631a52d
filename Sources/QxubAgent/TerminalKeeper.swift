import QxubScheduler
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// `qxub-agent keeper`: holds an interactive job's pseudo-terminal on the login node, so the session outlives
/// a dropped agent for a grace time.
///
/// The command runs with the pty's slave as its controlling terminal and stdio, in a session of its own.
/// Everything the master produces is appended to the job's `out` file, which agents tail as they tail a
/// batch job's output (so reconnects and exactly-once are theirs already); agents reach the keeper through
/// the unix socket `keeper.sock` in the job's 0700 directory to send input and window sizes
/// (``KeeperFrame``), and hear `N` when new output is in the file. What to do when is ``KeeperLifecycle``.
package final class TerminalKeeper {
    /// One agent's connection.
    private final class Peer {
        let fd: Int32
        let outbox: OutboxWriter
        var decoder = KeeperFrameDecoder()

        init(fd: Int32, outbox: OutboxWriter) {
            self.fd = fd
            self.outbox = outbox
        }
    }

    /// Input queued for the master above which the keeper stops reading from agents (and goes on below
    /// ``inputLowWater``): a command that reads no input never makes the keeper grow or block.
    package static let inputHighWater = 256 << 10
    package static let inputLowWater = 64 << 10
    /// Output the keeper holds while the `out` file cannot be written (a full disk), then keeps the newest.
    package static let unwrittenLimit = 1 << 20
    /// Seconds between SIGTERM and SIGKILL when the keeper ends its command.
    package static let endGrace = 2.0
    /// Seconds the keeper goes on reading the master after its command exited, for output still in the
    /// terminal; a background process that keeps the slave open does not hold the keeper for longer.
    package static let drainLimit = 2.0

    private let options: KeeperOptions
    private let paths: JobPaths
    private let loop: EventLoop
    private let log: AgentLog
    private let environment: [String]
    private var lifecycle: KeeperLifecycle
    private let jobs: LocalJobs

    private var terminal: PseudoTerminal?
    private var childPID: pid_t = 0
    private var childWatcher: ChildWatcher?
    private var masterInput: OutboxWriter?
    private var masterOpen = false
    private var listener: UnixSocket.BoundListener?
    private var peers: [Int32: Peer] = [:]
    private var readingPaused = false
    private var graceTimer: Int?
    private var drainTimer: Int?
    private var notifyScheduled = false

    private var outputFD: Int32 = -1
    private var unwritten: [UInt8] = []
    private var outputFailureLogged = false
    /// The scheduler's messages on the terminal until it started the job: the job id, whether it waits.
    private var messageReader: InteractiveMessageReader
    private var schedulerTextRead = 0
    private var messages: InteractiveMessages { messageReader.messages }
    /// The scheduler's text read at most (its messages come first and are short).
    static let schedulerTextLimit = 64 << 10
    /// Seconds a waiting job's cancel may take before the command's process group is ended anyway.
    package static let waitingCancelLimit = 15.0

    /// How the command ended, once the keeper is done.
    package private(set) var finished: ProcessExit?
    /// Called once the keeper is done: the command ended, its output and exit record are written, the socket
    /// is gone (``run(_:environment:)`` stops its loop).
    package var onFinish: () -> Void = {}

    /// - Parameters:
    ///   - environment: the command's environment (the keeper's own, with `TERM` from the options).
    ///   - signal: `kill(2)`, for ending the command's process group (``LocalJobs``).
    package init(
        options: KeeperOptions,
        loop: EventLoop,
        log: AgentLog,
        environment: [String],
        signal: @escaping LocalJobs.Signaller = LocalJobs.systemSignal
    ) {
        self.options = options
        self.paths = JobPaths(stateDirectory: options.directory)
        self.loop = loop
        self.log = log
        self.environment = environment
        self.lifecycle = KeeperLifecycle(grace: options.grace)
        self.messageReader = InteractiveMessageReader(kind: options.scheduler)
        self.jobs = LocalJobs(loop: loop, grace: Self.endGrace, signal: signal)
    }

    /// The command's environment: `base` with `TERM` replaced when one is given.
    package static func commandEnvironment(_ base: [String], term: String?) -> [String] {
        guard let term else { return base }
        return base.filter { !$0.hasPrefix("TERM=") } + ["TERM=" + term]
    }

    /// The pid of the command (0 before ``start()``).
    package var commandPID: pid_t { childPID }

    /// Agents connected now.
    package var connectedAgents: Int { peers.count }

    /// Input queued for the terminal and not yet taken by it.
    package var queuedInput: Int { masterInput?.pendingBytes ?? 0 }

    /// Opens the output file, the pty and the socket, and starts the command. A keeper that cannot start it
    /// (no such command, no pty, no socket) writes exit record 127, as a shell says of a command it cannot
    /// run, so an agent following the job learns of it; the reason is in `keeper.log`.
    package func start() throws {
        openOutput()
        let terminal: PseudoTerminal
        let listener: UnixSocket.BoundListener
        let child: ChildProcess
        do {
            terminal = try PseudoTerminal.open()
            self.terminal = terminal
            try PseudoTerminal.setWindowSize(options.windowSize, of: terminal.master)
            try FileDescriptor.setNonBlocking(terminal.master)
            listener = try UnixSocket.BoundListener.bind(paths.keeperSocket)
            self.listener = listener
            childWatcher = try ChildWatcher.of(loop)
            child = try ChildProcess.spawn(
                options.command,
                environment: environment,
                controllingTerminal: terminal.slavePath
            )
        } catch {
            log.write("cannot start \(options.command.joined(separator: " ")): \(error)")
            writeExitRecord(status: 127)
            self.listener?.close()
            self.listener = nil
            if let master = self.terminal?.master { FileDescriptor.close(master) }
            self.terminal = nil
            throw error
        }
        masterOpen = true
        childPID = child.pid
        log.write(
            "started \(options.command.joined(separator: " ")) as pid \(child.pid) on \(terminal.slavePath) "
                + "(\(options.windowSize.rows)x\(options.windowSize.columns)), grace \(options.grace) s"
        )
        childWatcher?.watchExit(child.pid) { [weak self] exit in self?.handle(.childExited(exit)) }

        let input = OutboxWriter(loop: loop, fd: terminal.master)
        input.lowWaterMark = Self.inputLowWater
        input.onLowWater = { [weak self] in self?.resumeReading() }
        input.onError = { [weak self] error in self?.log.write("terminal input lost: \(error)") }
        masterInput = input
        loop.setReadable(terminal.master) { [weak self] in self?.readMaster() }
        loop.setReadable(listener.fd) { [weak self] in self?.acceptPeers() }
        perform(lifecycle.start())
    }

    /// SIGTERM or SIGHUP reached the keeper: end the command, then finish.
    package func receivedTerminationSignal() {
        log.write("termination signal: ending the session")
        handle(.terminationSignal)
    }

    private func handle(_ event: KeeperLifecycle.Event) {
        perform(lifecycle.handle(event))
    }

    private func perform(_ actions: [KeeperLifecycle.Action]) {
        for action in actions {
            switch action {
            case .startGraceTimer(let seconds):
                graceTimer = loop.schedule(after: seconds) { [weak self] in
                    guard let self else { return }
                    graceTimer = nil
                    handle(.graceExpired)
                }
            case .cancelGraceTimer:
                if let graceTimer { loop.cancelTimer(graceTimer) }
                graceTimer = nil
            case .recordEnded(let text):
                log.write(text)
                do { try FileSystem.writeAtomically(paths.keeperEndedRecord, text + "\n") } catch {
                    log.write("cannot write \(paths.keeperEndedRecord): \(error)")
                }
            case .endChild:
                if options.scheduler != .local && messages.state != .started {
                    cancelWaiting()
                } else if !jobs.terminate(
                    group: childPID,
                    steps: [.signal(SIGHUP), .signal(SIGTERM), .wait(seconds: Self.endGrace)]
                ) {
                    log.write("the command's process group \(childPID) was not there to signal")
                }
            case .finish(let exit):
                log.write("the command \(exit)")
                finished = exit
                drainTimer = loop.schedule(after: Self.drainLimit) { [weak self] in
                    self?.log.write("output still open \(Self.drainLimit) s after the command ended: not waiting")
                    self?.complete()
                }
                readMaster()
                if !masterOpen { complete() }
            }
        }
    }

    // MARK: - A job still in the scheduler's queue

    /// Follows the scheduler's messages on the terminal until the job starts: its id, and whether it waits.
    private func readSchedulerMessages(_ bytes: ArraySlice<UInt8>) {
        guard options.scheduler != .local, messages.state != .started,
            schedulerTextRead < Self.schedulerTextLimit
        else { return }
        let taken = bytes.prefix(Self.schedulerTextLimit - schedulerTextRead)
        schedulerTextRead += taken.count
        _ = messageReader.take(taken)
    }

    /// Ends a session whose job has not started: the scheduler's cancel (PBS: `qdel ID`, then SIGHUP to qsub,
    /// which a SIGINT would only make ask; Slurm: SIGINT to srun, again after 2 s), and after
    /// ``waitingCancelLimit`` the process group's teardown in any case.
    private func cancelWaiting() {
        let cancel = SchedulerBackend(kind: options.scheduler).interactiveCancel(jobID: messages.jobID)
        log.write(
            "ending a session whose job has not started (\(messages.jobID ?? "no job id seen")): "
                + (cancel.command.map { $0.joined(separator: " ") + ", then " } ?? "") + "signal \(cancel.signal)"
        )
        let group = childPID
        func signal() {
            guard finished == nil else { return }
            _ = kill(-group, cancel.signal)
            if let again = cancel.repeatAfterSeconds {
                loop.schedule(after: again) { [weak self] in
                    guard let self, finished == nil else { return }
                    _ = kill(-group, cancel.signal)
                }
            }
        }
        loop.schedule(after: Self.waitingCancelLimit) { [weak self] in
            guard let self, finished == nil else { return }
            log.write("the waiting job's command is still there after \(Self.waitingCancelLimit) s: ending it")
            _ = jobs.terminate(group: group, steps: [.signal(SIGHUP), .signal(SIGTERM), .wait(seconds: Self.endGrace)])
        }
        guard let command = cancel.command else { return signal() }
        do {
            try CommandRunner.onLoop(loop).run(command, 60) { [weak self] run in
                self?.log.write("\(command.joined(separator: " ")): \(run.exit) \(run.stderrText.trimmingWhitespace())")
                signal()
            }
        } catch {
            log.write("cannot run \(command.joined(separator: " ")): \(error)")
            signal()
        }
    }

    // MARK: - The terminal's output

    /// Appends what the master has to `out`; at EIO (nobody has the slave open any more) the terminal is done.
    private func readMaster() {
        guard masterOpen, let master = terminal?.master else { return }
        var buffer = [UInt8](repeating: 0, count: 65536)
        // A few reads per turn, so agents' input is not starved by a command that prints without pause.
        for _ in 0..<16 {
            let outcome: FileDescriptor.ReadResult
            do {
                outcome = try buffer.withUnsafeMutableBytes { raw throws in try FileDescriptor.read(master, into: raw) }
            } catch {
                // EIO: the last holder of the slave closed it (Linux says so instead of end of file).
                return closeMaster()
            }
            switch outcome {
            case .bytes(let count): append(buffer[0..<count])
            case .wouldBlock: return
            case .endOfFile: return closeMaster()
            }
        }
    }

    private func closeMaster() {
        guard masterOpen, let master = terminal?.master else { return }
        masterOpen = false
        masterInput?.stop()
        loop.setReadable(master, nil)
        if finished != nil { complete() }
    }

    private func openOutput() {
        guard outputFD < 0 else { return }
        outputFD = open(paths.stdout, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        if outputFD < 0 { outputFailed(SystemError("open", paths.stdout)) }
    }

    /// Appends to `out`; while it cannot be written, holds up to ``unwrittenLimit`` bytes for the next try.
    private func append(_ bytes: ArraySlice<UInt8>) {
        unwritten.append(contentsOf: bytes)
        readSchedulerMessages(bytes)
        openOutput()
        guard outputFD >= 0 else { return trimUnwritten() }
        var written = 0
        while written < unwritten.count {
            let count: Int
            do {
                count = try unwritten.withUnsafeBytes { raw throws in
                    try FileDescriptor.writeSome(outputFD, UnsafeRawBufferPointer(rebasing: raw[written...]))
                }
            } catch {
                outputFailed(error as? SystemError ?? SystemError("write", paths.stdout, errno: EIO))
                break
            }
            if count == 0 { break }
            written += count
        }
        unwritten.removeFirst(written)
        trimUnwritten()
        if written > 0 { notifyPeers() }
    }

    private func trimUnwritten() {
        if unwritten.count > Self.unwrittenLimit { unwritten.removeFirst(unwritten.count - Self.unwrittenLimit) }
    }

    private func outputFailed(_ error: SystemError) {
        guard !outputFailureLogged else { return }
        outputFailureLogged = true
        log.write("cannot append the terminal's output to \(paths.stdout): \(error) (going on)")
    }

    /// Tells every agent, once per loop turn, that `out` grew. An agent with an `N` still queued is not told
    /// again: it reads the file to its end when that one arrives.
    private func notifyPeers() {
        guard !notifyScheduled else { return }
        notifyScheduled = true
        loop.schedule(after: 0) { [weak self] in
            guard let self else { return }
            notifyScheduled = false
            for peer in peers.values where peer.outbox.pendingBytes == 0 {
                peer.outbox.enqueue(KeeperFrame.output.encoded)
            }
        }
    }

    // MARK: - Agents

    private func acceptPeers() {
        guard let listener else { return }
        while let fd = UnixSocket.accept(listener.fd) {
            let credentials = PeerCredentials.of(fd)
            guard PeerCredentials.admits(credentials, ownUserID: getuid()) else {
                log.write("refused a connection from uid \(credentials.map { String($0.userID) } ?? "unknown")")
                FileDescriptor.close(fd)
                continue
            }
            do { try FileDescriptor.setNonBlocking(fd) } catch {
                FileDescriptor.close(fd)
                continue
            }
            let peer = Peer(fd: fd, outbox: OutboxWriter(loop: loop, fd: fd))
            peer.outbox.onError = { [weak self] _ in self?.drop(fd, because: "gone") }
            peers[fd] = peer
            log.write("agent connected (pid \(credentials?.pid ?? 0))")
            if !readingPaused { loop.setReadable(fd) { [weak self] in self?.readPeer(fd) } }
            handle(.agentConnected)
        }
    }

    private func readPeer(_ fd: Int32) {
        guard let peer = peers[fd] else { return }
        var buffer = [UInt8](repeating: 0, count: 16384)
        let outcome = try? buffer.withUnsafeMutableBytes { raw throws in try FileDescriptor.read(fd, into: raw) }
        switch outcome {
        case .bytes(let count)?: peer.decoder.append(buffer[0..<count])
        case .wouldBlock?: return
        case .endOfFile?, nil: return drop(fd, because: "left")
        }
        do {
            while let frame = try peer.decoder.next() {
                switch frame {
                case .input(let bytes):
                    guard let masterInput, masterOpen else { continue }
                    masterInput.enqueue(bytes)
                    if masterInput.pendingBytes > Self.inputHighWater { pauseReading() }
                case .resize(let size):
                    guard masterOpen, let master = terminal?.master else { continue }
                    do { try PseudoTerminal.setWindowSize(size, of: master) } catch {
                        log.write("cannot resize the terminal: \(error)")
                    }
                case .output:
                    return drop(fd, because: "sent a frame only the keeper sends")
                }
            }
        } catch {
            drop(fd, because: "sent a bad frame (\(error))")
        }
    }

    private func drop(_ fd: Int32, because reason: String) {
        guard let peer = peers.removeValue(forKey: fd) else { return }
        log.write("agent \(reason)")
        peer.outbox.stop()
        loop.remove(fd)
        FileDescriptor.close(fd)
        handle(.agentDisconnected)
    }

    private func pauseReading() {
        guard !readingPaused else { return }
        readingPaused = true
        for fd in peers.keys { loop.setReadable(fd, nil) }
    }

    private func resumeReading() {
        guard readingPaused else { return }
        readingPaused = false
        for fd in peers.keys { loop.setReadable(fd) { [weak self] in self?.readPeer(fd) } }
    }

    // MARK: - The end

    /// The command has exited and its output is in the file: the exit record, the socket gone, the loop
    /// stopped. A process-group teardown still under way goes on in a process of its own.
    private func complete() {
        guard let exit = finished, listener != nil else { return }
        if let drainTimer { loop.cancelTimer(drainTimer) }
        drainTimer = nil
        if !unwritten.isEmpty { append([]) }
        writeExitRecord(status: exit.shellStatus)
        for fd in Array(peers.keys) {
            peers[fd]?.outbox.stop()
            loop.remove(fd)
            FileDescriptor.close(fd)
        }
        peers.removeAll()
        if let listener {
            loop.remove(listener.fd)
            listener.close()
        }
        listener = nil
        if let master = terminal?.master {
            masterInput?.stop()
            loop.remove(master)
            FileDescriptor.close(master)
        }
        masterOpen = false
        if outputFD >= 0 { FileDescriptor.close(outputFD) }
        outputFD = -1
        jobs.detachTeardowns()
        log.write("done")
        onFinish()
    }

    /// `exit` as the job script writes it ("<status> <epoch> keeper"), unless the job wrote its own.
    private func writeExitRecord(status: Int32) {
        let record = "\(status) \(time(nil)) keeper\n"
        do {
            if try !FileSystem.createAtomically(paths.exitRecord, record) {
                log.write("the job wrote its own exit record")
            }
        } catch {
            log.write("cannot write \(paths.exitRecord): \(error)")
        }
    }

    /// The `qxub-agent keeper` process: the keeper on a loop of its own, ended by SIGTERM or SIGHUP too.
    /// Returns the process's exit status (0 once the command has ended and its record is written).
    package static func run(_ options: KeeperOptions, environment: [String]) -> Int32 {
        ignoreBrokenPipes()
        let loop = EventLoop()
        let log = AgentLog(path: JobPaths(stateDirectory: options.directory).keeperLog)
        let keeper = TerminalKeeper(
            options: options,
            loop: loop,
            log: log,
            environment: commandEnvironment(environment, term: options.term)
        )
        keeper.onFinish = { loop.stop() }
        do {
            let signals = try SignalPipe.install([SIGTERM, SIGHUP])
            loop.setReadable(signals) {
                if !SignalPipe.drain().isEmpty { keeper.receivedTerminationSignal() }
            }
            try keeper.start()
            try loop.run()
        } catch {
            log.write("keeper failed: \(error)")
            return 1
        }
        return keeper.finished == nil ? 1 : 0
    }
}
