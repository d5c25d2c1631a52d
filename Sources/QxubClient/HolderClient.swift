import QxubProtocol
import QxubSystem

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A qxub process's way into its platform's session holder (``SessionHolder``): the socket's name, and a
/// connect and hello exchange bounded by a short deadline, so that a missing, stale or hung holder costs at
/// most that long before qxub takes the direct path.
package enum HolderClient {
    /// How long a holder may take to accept and answer the hello (seconds).
    package static let deadline = 0.2

    /// A connection whose hellos were exchanged: the holder answered with the agent's hello.
    package struct Connected {
        package var fd: Int32
        package var pid: pid_t
        package var endpoint: ProtocolEndpoint
        /// What was read with the hello (`.ready` first), to deliver to the session's handler.
        package var events: [ProtocolEndpoint.Event]
        /// When the connect began (monotonic).
        package var startedAt: Double
    }

    /// What came of trying the holder.
    package enum Outcome {
        case connected(Connected)
        /// No holder (no socket file, or one nobody listens on): start one.
        case absent(stale: Bool)
        /// Something at the socket that is not the user's own process.
        case foreign(PeerCredentials?)
        /// A holder that did not answer in time (or hung up, or spoke nonsense): replaced.
        case noAnswer(pid: pid_t, reason: String)
    }

    /// The holder socket's file name for a platform. It carries the protocol versions this qxub speaks, so
    /// qxub builds of different protocols each find their own holder and never talk to another's.
    package static func socketName(platform: String) -> String {
        let versions = ProtocolConstants.versions
        return "holder-p\(versions.lowerBound)-\(versions.upperBound)-"
            + ControlDirectory.socketName(platform: platform)
    }

    /// The pid of the user's own holder listening at `path` (nil when none listens).
    package static func running(at path: String) -> pid_t? {
        guard let listener = ControlDirectory.listener(path), listener.userID == getuid() else { return nil }
        return listener.pid
    }

    /// Stops the holder at `path` (SIGTERM; it removes its socket as it ends) and waits for it to go, at most
    /// `timeout` seconds. A holder still starting (its agent session not up, so not listening yet) is stopped
    /// too: it would otherwise go on to serve an agent that `qxub agent uninstall` just removed. Its clients
    /// reconnect and resume from their byte offsets.
    /// - Returns: the stopped holder's pid, nil when none ran.
    @discardableResult
    package static func stop(at path: String, timeout: Double = 2) -> pid_t? {
        guard let pid = running(at: path) ?? starting(lockPath: path + ".lock") else { return nil }
        kill(pid, SIGTERM)
        let start = MonotonicClock.now()
        while FileSystem.exists(path) || starting(lockPath: path + ".lock") != nil,
            MonotonicClock.now() - start < timeout
        {
            usleep(5_000)
        }
        return pid
    }

    /// The pid of a holder that holds the socket's lock (every holder does, from its start to its end), from
    /// the lock file; nil when the lock is free.
    static func starting(lockPath: String) -> pid_t? {
        let fd = open(lockPath, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { FileDescriptor.close(fd) }
        if flock(fd, LOCK_EX | LOCK_NB) == 0 {
            flock(fd, LOCK_UN)
            return nil
        }
        guard let text = FileSystem.readText(lockPath),
            let pid = pid_t(text.split(separator: "\n").first ?? ""), pid > 0, kill(pid, 0) == 0
        else { return nil }
        return pid
    }

    /// Connects to the holder at `path` and exchanges hellos within `deadline` seconds.
    package static func connect(path: String, hello: Hello, deadline: Double = deadline) -> Outcome {
        let start = MonotonicClock.now()
        // A holder that closes the socket before reading our hello must show up as EPIPE, never kill qxub.
        ignoreBrokenPipes()
        let fd: Int32
        switch UnixSocket.connect(path) {
        case .success(let connected): fd = connected
        case .failure(.refused): return .absent(stale: true)
        case .failure: return .absent(stale: false)
        }
        let peer = PeerCredentials.of(fd)
        guard PeerCredentials.admits(peer, ownUserID: getuid()) else {
            FileDescriptor.close(fd)
            return .foreign(peer)
        }
        let pid = peer?.pid ?? 0
        func fail(_ reason: String) -> Outcome {
            FileDescriptor.close(fd)
            return .noAnswer(pid: pid, reason: reason)
        }
        var endpoint = ProtocolEndpoint(hello: hello, preambleLimit: 0)
        do {
            // A hello is a few hundred bytes: the socket's buffer takes it at once.
            try FileDescriptor.writeAll(fd, endpoint.start())
            try FileDescriptor.setNonBlocking(fd)
        } catch {
            return fail("\(error)")
        }
        var events: [ProtocolEndpoint.Event] = []
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while endpoint.negotiation == nil {
            let left = deadline - (MonotonicClock.now() - start)
            guard left > 0 else { return fail("no hello in \(Int(deadline * 1000)) ms") }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(max(1, (left * 1000).rounded(.up))))
            if ready < 0 && currentErrno() != EINTR { return fail("poll: errno \(currentErrno())") }
            guard ready > 0 else { continue }
            let outcome: FileDescriptor.ReadResult
            do {
                outcome = try buffer.withUnsafeMutableBytes { try FileDescriptor.read(fd, into: $0) }
            } catch {
                return fail("\(error)")
            }
            switch outcome {
            case .wouldBlock: continue
            case .endOfFile: return fail("it hung up before its hello")
            case .bytes(let count):
                do {
                    try endpoint.receive(buffer[0..<count]) { events.append($0) }
                } catch {
                    return fail("\(error)")
                }
            }
        }
        return .connected(Connected(fd: fd, pid: pid, endpoint: endpoint, events: events, startedAt: start))
    }
}
