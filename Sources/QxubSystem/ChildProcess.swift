#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How a process ended. Process exit is data, never a thrown error.
public enum ProcessExit: Hashable, Sendable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    public init(waitStatus status: Int32) {
        if status & 0x7F == 0 {
            self = .exited((status >> 8) & 0xFF)
        } else {
            self = .signaled(status & 0x7F)
        }
    }

    public var description: String {
        switch self {
        case .exited(let code): "exited with status \(code)"
        case .signaled(let signal): "killed by signal \(signal)"
        }
    }

    /// The shell's view: the code, or 128 + the signal.
    public var shellStatus: Int32 {
        switch self {
        case .exited(let code): code
        case .signaled(let signal): 128 + signal
        }
    }
}

/// A process started with `posix_spawn` (no shell, an exact argv).
public struct ChildProcess: Sendable {
    /// What one of the child's standard descriptors is connected to.
    public enum Stdio: Sendable {
        case inherit
        case null
        /// A new pipe; the parent's end is in ``ChildProcess/stdin``/``stdout``/``stderr``.
        case pipe
        case fileDescriptor(Int32)
    }

    public let pid: pid_t
    /// The parent's ends of the pipes asked for (close them when done).
    public let stdin: Int32?
    public let stdout: Int32?
    public let stderr: Int32?

    /// Starts `arguments[0]`, searched on `PATH` when it has no slash.
    ///
    /// - Parameters:
    ///   - environment: `nil` inherits ours.
    ///   - newSession: the child leads a new session and process group (it survives our terminal's Ctrl-C).
    ///   - newProcessGroup: the child gets its own process group in our session: the terminal's Ctrl-C
    ///     reaches only us, and we decide what it means for the child.
    public static func spawn(
        _ arguments: [String],
        environment: [String]? = nil,
        stdin: Stdio = .inherit,
        stdout: Stdio = .inherit,
        stderr: Stdio = .inherit,
        newSession: Bool = false,
        newProcessGroup: Bool = false
    ) throws -> ChildProcess {
        guard var program = arguments.first else { throw SystemError("spawn", "(empty argv)", errno: EINVAL) }
        // posix_spawnp searches our own PATH; with an environment given, search the child's instead.
        if let environment, !program.contains("/" as Character),
            let path = environment.last(where: { $0.hasPrefix("PATH=") })?.dropFirst(5)
        {
            guard let found = Environment.which(program, path: String(path)) else {
                throw SystemError("spawn", program, errno: ENOENT)
            }
            program = found
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }

        var parentEnds: [Int32?] = [nil, nil, nil]
        var childEnds: [Int32] = []
        defer { for fd in childEnds { FileDescriptor.close(fd) } }
        var opened: [Int32] = []
        func cleanupOnError() {
            for fd in opened { FileDescriptor.close(fd) }
        }
        for (target, stdio) in [(Int32(0), stdin), (1, stdout), (2, stderr)] {
            switch stdio {
            case .inherit:
                break
            case .null:
                posix_spawn_file_actions_addopen(&actions, target, "/dev/null", target == 0 ? O_RDONLY : O_WRONLY, 0)
            case .pipe:
                let ends: (read: Int32, write: Int32)
                do { ends = try FileDescriptor.pipe() } catch {
                    cleanupOnError()
                    throw error
                }
                let (childEnd, parentEnd) = target == 0 ? (ends.read, ends.write) : (ends.write, ends.read)
                posix_spawn_file_actions_adddup2(&actions, childEnd, target)
                childEnds.append(childEnd)
                opened.append(parentEnd)
                parentEnds[Int(target)] = parentEnd
            case .fileDescriptor(let fd):
                posix_spawn_file_actions_adddup2(&actions, fd, target)
            }
        }

        // Signals we ignore or catch must not leak into the child; nor our signal mask.
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for sig in [SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD, SIGQUIT] { sigaddset(&defaults, sig) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        var flags = Int32(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)
        if newProcessGroup && !newSession {
            flags |= Int32(POSIX_SPAWN_SETPGROUP)
            posix_spawnattr_setpgroup(&attributes, 0)
        }
        if newSession {
            #if canImport(Glibc)
            flags |= 0x80  // POSIX_SPAWN_SETSID (glibc 2.26+), not exported to Swift
            #else
            flags |= Int32(POSIX_SPAWN_SETPGROUP)
            #endif
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))

        let argv = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let envp: [UnsafeMutablePointer<CChar>?]? = environment.map { $0.map { strdup($0) } + [nil] }
        defer { if let envp { for pointer in envp { free(pointer) } } }

        var pid: pid_t = 0
        let status: Int32
        if let envp {
            status = posix_spawnp(&pid, program, &actions, &attributes, argv, envp)
        } else {
            status = posix_spawnp(&pid, program, &actions, &attributes, argv, environ)
        }
        guard status == 0 else {
            cleanupOnError()
            throw SystemError("spawn", program, errno: status)
        }
        return ChildProcess(pid: pid, stdin: parentEnds[0], stdout: parentEnds[1], stderr: parentEnds[2])
    }

    /// Waits for the child to end.
    public func wait() -> ProcessExit {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if currentErrno() != EINTR { return .exited(255) }
        }
        return ProcessExit(waitStatus: status)
    }

    /// The exit, if the child has ended; `nil` while it runs.
    public func poll() -> ProcessExit? {
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        guard result == pid else { return nil }
        return ProcessExit(waitStatus: status)
    }

    public func signal(_ signal: Int32) {
        kill(pid, signal)
    }
}

/// The outcome of ``runCollectingOutput(_:environment:stdinBytes:timeout:)``.
public struct CollectedRun: Sendable {
    public var exit: ProcessExit
    public var stdout: [UInt8]
    public var stderr: [UInt8]
    /// How many of the `stdinBytes` the child read before it closed its stdin or ended (all of them when it
    /// read everything).
    public var stdinAccepted: Int
    public init(exit: ProcessExit, stdout: [UInt8], stderr: [UInt8], stdinAccepted: Int = 0) {
        self.exit = exit
        self.stdout = stdout
        self.stderr = stderr
        self.stdinAccepted = stdinAccepted
    }
    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
}

/// Runs a command to completion, feeding stdin while draining stdout and stderr (so no pipe can fill and
/// deadlock), with an output cap and a timeout after which the child is killed.
///
/// A child that stops reading its stdin early (it exited, or closed it) is no failure of ours: the rest of
/// `stdinBytes` is dropped and ``CollectedRun/stdinAccepted`` says how far it read. SIGPIPE is ignored for
/// that (process-wide, as the agent and the sessions already do), so the broken pipe cannot kill the caller.
public func runCollectingOutput(
    _ arguments: [String],
    environment: [String]? = nil,
    stdinBytes: [UInt8]? = nil,
    timeout: Double = 60,
    outputLimit: Int = 16 << 20
) throws -> CollectedRun {
    let child = try ChildProcess.spawn(
        arguments,
        environment: environment,
        stdin: stdinBytes == nil ? .null : .pipe,
        stdout: .pipe,
        stderr: .pipe
    )
    var input = child.stdin
    var accepted = 0
    let stdinBytes = stdinBytes ?? []
    if let fd = input {
        ignoreBrokenPipes()
        try? FileDescriptor.setNonBlocking(fd)
    }
    func closeInput() {
        if let fd = input { FileDescriptor.close(fd) }
        input = nil
    }
    if accepted == stdinBytes.count { closeInput() }
    // Two plain arrays, appended in place (a dictionary's values would be copied on every append).
    var stdout: [UInt8] = []
    var stderr: [UInt8] = []
    var open: [Int32] = [child.stdout!, child.stderr!]
    let deadline = MonotonicClock.now() + timeout
    var buffer = [UInt8](repeating: 0, count: 65536)
    var timedOut = false
    while !open.isEmpty || input != nil {
        var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        if let fd = input { fds.append(pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)) }
        let remaining = deadline - MonotonicClock.now()
        if remaining <= 0 {
            timedOut = true
            break
        }
        let ready = Glibc.poll(&fds, nfds_t(fds.count), Int32(min(remaining * 1000, 60_000)))
        if ready < 0 && currentErrno() != EINTR { throw SystemError("poll") }
        for entry in fds where entry.revents != 0 && entry.fd == input {
            // POLLERR or POLLHUP: the reader is gone; a write says so as EPIPE.
            do {
                accepted += try stdinBytes.withUnsafeBytes { raw throws in
                    try FileDescriptor.writeSome(entry.fd, UnsafeRawBufferPointer(rebasing: raw[accepted...]))
                }
                if accepted == stdinBytes.count { closeInput() }
            } catch {
                closeInput()
            }
        }
        for entry in fds where entry.revents != 0 && entry.fd != input && open.contains(entry.fd) {
            let outcome = try buffer.withUnsafeMutableBytes { raw throws in
                try FileDescriptor.read(entry.fd, into: raw)
            }
            switch outcome {
            case .bytes(let count):
                if entry.fd == child.stdout {
                    if stdout.count < outputLimit { stdout.append(contentsOf: buffer[0..<count]) }
                } else if stderr.count < outputLimit {
                    stderr.append(contentsOf: buffer[0..<count])
                }
            case .endOfFile:
                open.removeAll { $0 == entry.fd }
            case .wouldBlock:
                break
            }
        }
    }
    closeInput()
    if timedOut { child.signal(SIGKILL) }
    let exit = child.wait()
    FileDescriptor.close(child.stdout!)
    FileDescriptor.close(child.stderr!)
    if timedOut { stderr += Array("\n(killed after \(Int(timeout)) s without finishing)\n".utf8) }
    return CollectedRun(exit: exit, stdout: stdout, stderr: stderr, stdinAccepted: accepted)
}
