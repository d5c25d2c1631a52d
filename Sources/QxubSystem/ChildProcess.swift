#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How a process ended. Process exit is data, never a thrown error.
package enum ProcessExit: Hashable, Sendable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    package init(waitStatus status: Int32) {
        if status & 0x7F == 0 {
            self = .exited((status >> 8) & 0xFF)
        } else {
            self = .signaled(status & 0x7F)
        }
    }

    package var description: String {
        switch self {
        case .exited(let code): "exited with status \(code)"
        case .signaled(let signal): "killed by signal \(signal)"
        }
    }

    /// The shell's view: the code, or 128 + the signal.
    package var shellStatus: Int32 {
        switch self {
        case .exited(let code): code
        case .signaled(let signal): 128 + signal
        }
    }
}

/// A process started with `posix_spawn` (no shell, an exact argv).
package struct ChildProcess: Sendable {
    /// What one of the child's standard descriptors is connected to.
    package enum Stdio: Sendable {
        case inherit
        case null
        /// A new pipe; the parent's end is in ``ChildProcess/stdin``/``stdout``/``stderr``.
        case pipe
        case fileDescriptor(Int32)
    }

    package let pid: pid_t
    /// The parent's ends of the pipes asked for (close them when done).
    package let stdin: Int32?
    package let stdout: Int32?
    package let stderr: Int32?

    /// Starts `arguments[0]`, searched on `PATH` when it has no slash.
    ///
    /// - Parameters:
    ///   - environment: `nil` inherits ours.
    ///   - newSession: the child leads a new session and process group (it survives our terminal's Ctrl-C).
    ///   - newProcessGroup: the child gets its own process group in our session: the terminal's Ctrl-C
    ///     reaches only us, and we decide what it means for the child.
    ///   - controllingTerminal: a terminal's path (a ``PseudoTerminal``'s slave) that the child opens as its
    ///     stdin, stdout and stderr in a new session (this implies `newSession`; the three `Stdio` are
    ///     ignored). Opened after `setsid` and without `O_NOCTTY`, it becomes the session's controlling
    ///     terminal: job control, Ctrl-C and SIGWINCH reach the child's foreground process group.
    package static func spawn(
        _ arguments: [String],
        environment: [String]? = nil,
        stdin: Stdio = .inherit,
        stdout: Stdio = .inherit,
        stderr: Stdio = .inherit,
        newSession: Bool = false,
        newProcessGroup: Bool = false,
        controllingTerminal: String? = nil
    ) throws -> ChildProcess {
        let newSession = newSession || controllingTerminal != nil
        let (stdin, stdout, stderr) =
            controllingTerminal == nil ? (stdin, stdout, stderr) : (.inherit, .inherit, .inherit)
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

        if let controllingTerminal {
            // File actions run after POSIX_SPAWN_SETSID (glibc): the session leader's first terminal opened
            // without O_NOCTTY is its controlling terminal.
            posix_spawn_file_actions_addopen(&actions, 0, controllingTerminal, O_RDWR, 0)
            posix_spawn_file_actions_adddup2(&actions, 0, 1)
            posix_spawn_file_actions_adddup2(&actions, 0, 2)
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
    package func wait() -> ProcessExit {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if currentErrno() != EINTR { return .exited(255) }
        }
        return ProcessExit(waitStatus: status)
    }

    /// The exit, if the child has ended; `nil` while it runs.
    package func poll() -> ProcessExit? {
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        guard result == pid else { return nil }
        return ProcessExit(waitStatus: status)
    }

    package func signal(_ signal: Int32) {
        kill(pid, signal)
    }
}
