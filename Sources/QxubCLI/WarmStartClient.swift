import QxubClient
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// The asking side of ``WarmStart``: before qxub parses anything, hand the command to a warm session holder
/// of this same build, forward signals to the fork that runs it, and exit with its status.
enum WarmStartClient {
    /// Signals the fork gets from here: Ctrl-C, Ctrl-\, a closed terminal, `kill`.
    static let forwardedSignals: [Int32] = [SIGINT, SIGQUIT, SIGHUP, SIGTERM]

    /// Runs `arguments` in a warm fork; returns its exit status, nil when this process should run the
    /// command itself (no holder, another build, a command that needs a terminal, `QXUB_WARM_START=0`).
    static func forward(_ arguments: [String]) -> Int32? {
        guard let command = arguments.first, WarmStart.isWarmCommand(command),
            Environment.get("QXUB_WARM_START") != "0",
            let identity = WarmStart.executableIdentity(),
            let directory = try? SSHLauncher.controlDirectory()
        else { return nil }
        let sockets = FileSystem.listDirectory(directory).filter { $0.hasPrefix(WarmStart.socketPrefix) }.sorted()
        guard !sockets.isEmpty else { return nil }
        let request = WarmStart.Request(
            identity: identity,
            arguments: arguments,
            directory: currentDirectory() ?? "",
            environment: Environment.all(),
            umask: currentUmask(),
            ignoredSignals: (1..<Int32(32)).filter(isIgnored)
        )
        guard !request.directory.isEmpty else { return nil }
        let bytes = request.encoded()
        for name in sockets {
            guard case .success(let fd) = UnixSocket.connect(directory + "/" + name) else { continue }
            defer { FileDescriptor.close(fd) }
            guard PeerCredentials.admits(PeerCredentials.of(fd), ownUserID: getuid()),
                (try? UnixSocket.send(fd, bytes, descriptors: [0, 1, 2])) != nil
            else { continue }
            switch follow(fd) {
            case .ran(let code): return code
            case .runHere: return nil
            case .tryNext: continue
            }
        }
        return nil
    }

    private enum Outcome {
        case ran(Int32)
        case runHere
        case tryNext
    }

    /// Waits for the fork to start (at most ``WarmStart/startDeadline``), commits to it, forwards signals to
    /// it, and returns its status.
    private static func follow(_ fd: Int32) -> Outcome {
        guard let signalFD = try? SignalPipe.install(forwardedSignals) else { return .tryNext }
        defer { SignalPipe.restoreDefault(forwardedSignals) }
        var child: pid_t?
        var received: [UInt8] = []
        var caught: [Int32] = []
        let start = MonotonicClock.now()
        while true {
            var timeout: Int32 = -1
            if child == nil {
                let left = WarmStart.startDeadline - (MonotonicClock.now() - start)
                // A holder that does not fork in time (stopped, overloaded): this qxub runs the command; the
                // fork, if one comes, finds the connection closed and exits without running anything.
                guard left > 0 else { return caught.first.map { .ran(128 + $0) } ?? .tryNext }
                timeout = Int32((left * 1000).rounded(.up))
            }
            var polled = [
                pollfd(fd: fd, events: Int16(POLLIN), revents: 0),
                pollfd(fd: signalFD, events: Int16(POLLIN), revents: 0),
            ]
            let ready = poll(&polled, 2, timeout)
            if ready < 0 && errno != EINTR { return child == nil ? .tryNext : lost(child) }
            if polled[1].revents != 0 {
                caught += SignalPipe.drain()
                if let child {
                    for signal in caught { kill(child, signal) }
                    caught.removeAll()
                }
            }
            guard polled[0].revents != 0 else { continue }
            var buffer = [UInt8](repeating: 0, count: 64)
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return child == nil ? .tryNext : lost(child) }
            received += buffer[0..<count]
            while received.count >= WarmStart.Reply.size {
                let reply = WarmStart.Reply(received.prefix(WarmStart.Reply.size))
                received.removeFirst(WarmStart.Reply.size)
                switch reply {
                case .started(let pid)?:
                    guard (try? FileDescriptor.writeAll(fd, [WarmStart.goAhead])) != nil else { return .tryNext }
                    child = pid
                    // Ctrl-C pressed while the fork was starting.
                    for signal in caught { kill(pid, signal) }
                    caught.removeAll()
                case .exited(let code)?: return .ran(code)
                case .signalled(let signal)?: return .ran(128 + signal)
                case .runHere?: return .runHere
                case nil: return child == nil ? .tryNext : lost(child)
                }
            }
        }
    }

    /// The holder ended while its fork ran (killed?): the fork's status cannot be known here.
    private static func lost(_ child: pid_t?) -> Outcome {
        try? FileDescriptor.writeAll(
            2,
            "qxub: error: the session holder that ran this command for you ended before it (pid \(child ?? 0)); "
                + "its exit status is unknown\n  hint: `qxub history` and `qxub status JOB` show what became of a job\n"
        )
        return .ran(ExitCodes.internalError)
    }

    private static func currentDirectory() -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return nil }
        return String(cString: buffer)
    }

    private static func currentUmask() -> UInt32 {
        let mask = umask(0o022)
        umask(mask)
        return UInt32(mask)
    }

    private static func isIgnored(_ signal: Int32) -> Bool {
        var action = sigaction()
        guard sigaction(signal, nil, &action) == 0 else { return false }
        guard let handler = action.__sigaction_handler.sa_handler else { return false }
        return unsafeBitCast(handler, to: Int.self) == 1  // SIG_IGN is ((__sighandler_t) 1)
    }
}
