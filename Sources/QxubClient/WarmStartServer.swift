import QxubSystem

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The holder's side of ``WarmStart``: listens on the warm socket, reads each request with its descriptors,
/// has it forked (by `fork`, which QxubCLI supplies: the fork runs qxub's own entry) and, once the fork is
/// reaped, tells the asking qxub its exit status.
package final class WarmStartServer {
    private let loop: EventLoop
    private let socketPath: String
    private let identity: String
    /// Forks a process that runs `request` on `descriptors` (stdin, stdout, stderr) and talks on `connection`
    /// (``WarmStart/Reply/started(_:)``, the go-ahead, ``WarmStart/Reply/runHere``). Returns its pid, nil when
    /// the fork failed.
    private let fork: (_ request: WarmStart.Request, _ descriptors: [Int32], _ connection: Int32) -> pid_t?
    private let log: (String) -> Void
    private var listener: UnixSocket.BoundListener?
    private var pending: [Int32: Pending] = [:]
    /// Forks that run, by pid: the connection their status goes to.
    private var children: [pid_t: Int32] = [:]
    /// Called when the last running fork ended.
    package var onChildrenEnded: () -> Void = {}

    private struct Pending {
        var bytes: [UInt8] = []
        var descriptors: [Int32] = []
    }

    package init(
        loop: EventLoop,
        socketPath: String,
        identity: String,
        log: @escaping (String) -> Void,
        fork: @escaping (WarmStart.Request, [Int32], Int32) -> pid_t?
    ) {
        self.loop = loop
        self.socketPath = socketPath
        self.identity = identity
        self.log = log
        self.fork = fork
    }

    /// How many forks run now.
    package var runningChildren: Int { children.count }

    package func start() throws(SystemError) {
        let listener = try UnixSocket.BoundListener.bind(socketPath)
        self.listener = listener
        loop.setReadable(listener.fd) { [unowned self] in accept(listener.fd) }
    }

    /// Stops taking requests (forks that run are still reaped and reported).
    package func stopListening() {
        for fd in pending.keys { drop(fd) }
        guard let listener else { return }
        loop.remove(listener.fd)
        listener.close()
        self.listener = nil
    }

    private func accept(_ listener: Int32) {
        while let fd = UnixSocket.accept(listener) {
            let peer = PeerCredentials.of(fd)
            guard PeerCredentials.admits(peer, ownUserID: getuid()), (try? FileDescriptor.setNonBlocking(fd)) != nil
            else {
                log("warm start: refused a connection from \(peer.map { "uid \($0.userID)" } ?? "an unknown peer")")
                FileDescriptor.close(fd)
                continue
            }
            pending[fd] = Pending()
            loop.setReadable(fd) { [unowned self] in read(fd) }
        }
    }

    private func read(_ fd: Int32) {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while var request = pending[fd] {
            let outcome: (count: Int, descriptors: [Int32])?
            do {
                outcome = try buffer.withUnsafeMutableBytes { try UnixSocket.receive(fd, into: $0) }
            } catch {
                return drop(fd)
            }
            guard let outcome else { return }
            request.descriptors += outcome.descriptors
            guard outcome.count > 0 else {
                pending[fd] = request
                return drop(fd)
            }
            request.bytes += buffer[0..<outcome.count]
            pending[fd] = request
            guard request.bytes.count >= WarmStart.Request.headerSize else { continue }
            guard let total = WarmStart.Request.totalSize(prefix: request.bytes[...]) else {
                return answer(fd, .runHere, "not a warm-start request")
            }
            if request.bytes.count < total { continue }
            return run(fd, request)
        }
    }

    private func run(_ fd: Int32, _ pending: Pending) {
        guard let request = WarmStart.Request.decode(pending.bytes[...]), pending.descriptors.count == 3 else {
            return answer(fd, .runHere, "a malformed request")
        }
        guard request.identity == identity else {
            return answer(fd, .runHere, "another build of qxub asked (\(request.identity))")
        }
        loop.remove(fd)
        self.pending[fd] = nil
        guard let pid = fork(request, pending.descriptors, fd) else {
            for descriptor in pending.descriptors { FileDescriptor.close(descriptor) }
            self.pending[fd] = Pending()
            return answer(fd, .runHere, "fork failed: errno \(currentErrno())")
        }
        for descriptor in pending.descriptors { FileDescriptor.close(descriptor) }
        children[pid] = fd
        // The fork itself says it started, and waits for the asking qxub's go-ahead (``WarmStart``).
        log("warm start: pid \(pid) for `\(request.arguments.prefix(2).joined(separator: " "))`")
        do {
            try ChildWatcher.of(loop).watchExit(pid) { [unowned self] exit in ended(pid, exit) }
        } catch {
            log("warm start: cannot watch pid \(pid): \(error)")
        }
    }

    private func ended(_ pid: pid_t, _ exit: ProcessExit) {
        guard let fd = children.removeValue(forKey: pid) else { return }
        // The fork wrote its own status first when it could; this one is for a fork killed by a signal.
        let reply: WarmStart.Reply =
            switch exit {
            case .exited(let code): .exited(code)
            case .signaled(let signal): .signalled(signal)
            }
        try? FileDescriptor.writeAll(fd, reply.encoded)
        FileDescriptor.close(fd)
        if children.isEmpty { onChildrenEnded() }
    }

    /// Answers a request that runs nothing, and closes its connection.
    private func answer(_ fd: Int32, _ reply: WarmStart.Reply, _ reason: String) {
        log("warm start declined: \(reason)")
        try? FileDescriptor.writeAll(fd, reply.encoded)
        drop(fd)
    }

    private func drop(_ fd: Int32) {
        if let request = pending.removeValue(forKey: fd) {
            for descriptor in request.descriptors { FileDescriptor.close(descriptor) }
        }
        loop.remove(fd)
        FileDescriptor.close(fd)
    }
}
