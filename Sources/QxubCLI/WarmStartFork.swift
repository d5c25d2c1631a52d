import QxubClient
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// The holder's side of ``WarmStart`` in the executable: warming the argument parser up, and the fork that
/// becomes the asking qxub (its descriptors, directory, environment, umask and signals) and runs ``Entry``.
enum WarmStartFork {
    /// Parses one command line of each warm command once, so that a fork finds swift-argument-parser's
    /// reflection and the runtime's conformance caches already filled.
    static func warmUp() {
        let lines = [
            ["exec", "--terse", "--platform", "p", "--mem", "1GB", "--cpus", "1", "--", "true"],
            ["status", "--platform", "p", "--format", "json", "1"],
            ["cancel", "--platform", "p", "1"],
        ]
        for line in lines { _ = try? QxubCommand.parseAsRoot(line) }
    }

    /// Forks; the child becomes the asking qxub and never returns. Returns the child's pid (nil: no fork).
    static func fork(_ request: WarmStart.Request, descriptors: [Int32], connection: Int32) -> pid_t? {
        let pid = Glibc.fork()
        if pid < 0 { return nil }
        if pid > 0 { return pid }
        become(request, descriptors: descriptors, connection: connection)
    }

    /// The child: from here on this process is the qxub that asked, as far as anyone can tell.
    private static func become(_ request: WarmStart.Request, descriptors: [Int32], connection: Int32) -> Never {
        SignalPipe.forgetInheritedState()
        for signal in 1..<Int32(32) where signal != SIGKILL && signal != SIGSTOP {
            _ = Glibc.signal(signal, request.ignoredSignals.contains(signal) ? SIG_IGN : SIG_DFL)
        }
        var none = sigset_t()
        sigemptyset(&none)
        sigprocmask(SIG_SETMASK, &none, nil)
        for (target, fd) in descriptors.enumerated() { dup2(fd, Int32(target)) }
        // Everything else is the holder's (its sockets, the agent's pipes, signal pipes): not this process's.
        let open = FileSystem.listDirectory("/proc/self/fd").compactMap { Int32($0) }
        for fd in open where fd > 2 && fd != connection { close(fd) }
        let blocking = try? FileDescriptor.setNonBlocking(connection, false)
        guard blocking != nil, chdir(request.directory) == 0 else { handBack(connection) }
        umask(mode_t(request.umask))
        clearenv()
        for variable in request.environment {
            guard let equals = variable.firstIndex(of: "="), equals != variable.startIndex else { continue }
            setenv(String(variable[..<equals]), String(variable[variable.index(after: equals)...]), 1)
        }
        // Nothing runs before the asking qxub commits to this fork (it may have given up waiting).
        let started = WarmStart.Reply.started(getpid()).encoded
        let sent = started.withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == started.count, readGoAhead(connection) else { _exit(0) }
        var arguments = request.arguments
        arguments.insert(contentsOf: ["--warm-start-fork", String(connection)], at: min(1, arguments.count))
        Entry.run(arguments, warmConnection: connection)
    }

    /// Tells the asking qxub to run the command itself; ends this fork.
    static func handBack(_ connection: Int32) -> Never {
        report(.runHere, on: connection)
        _exit(0)
    }

    /// Sends `reply` to the asking qxub, which may have gone already (it exits at the first status): no SIGPIPE.
    static func report(_ reply: WarmStart.Reply, on connection: Int32) {
        let bytes = reply.encoded
        _ = bytes.withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    private static func readGoAhead(_ connection: Int32) -> Bool {
        var byte: UInt8 = 0
        while true {
            let count = Glibc.read(connection, &byte, 1)
            if count == 1 { return byte == WarmStart.goAhead }
            if count < 0 && errno == EINTR { continue }
            return false
        }
    }
}
