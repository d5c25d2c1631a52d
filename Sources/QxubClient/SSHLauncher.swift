import QxubProtocol
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// Runs the system `ssh` for a remote platform, so the user's ~/.ssh/config, keys, agent, ProxyJump and
/// MFA keep working, and reuses one master connection (ControlMaster/ControlPersist) for every call.
public struct SSHLauncher: Sendable {
    public let platform: String
    public let remote: Platform.Remote

    public init(platform: String, remote: Platform.Remote) {
        self.platform = platform
        self.remote = remote
    }

    /// The remote command that starts the agent: constant, and the same for bash, zsh and tcsh.
    public static func agentCommand(versions: ClosedRange<UInt32> = ProtocolConstants.versions) -> String {
        shimCommand("\(versions.lowerBound) \(versions.upperBound)")
    }

    /// Runs the shim with `arguments` (digits, letters and spaces only) after ``trustCheck`` passed.
    ///
    /// One line in single quotes with no `!`, so that bash, zsh and tcsh login shells all pass it to `sh`
    /// unchanged (csh cannot take a multi-line argument). The shim is sourced, not started: no extra `sh`.
    static func shimCommand(_ arguments: String) -> String {
        "sh -c '\(trustCheck); set -- \(arguments); . .qxub/bin/qxub-shim'"
    }

    /// The check that runs before any file of the agent's directories is executed: ~/.qxub, ~/.qxub/bin, the
    /// shim, ~/.qxub/agent-dir, the agent directory, its version directories and agents must be owned by the
    /// user and not writable by group or others, or a member of the user's group could run code as the user
    /// (issue 9). It lives here, in the constant command, because a replaced shim would never check itself.
    ///
    /// Ownership is the shell's own `test -O`. No shell builtin reads permission bits, so one `find` (about
    /// the cost of starting `/bin/true`) tests all the paths at once. Missing paths are skipped: the shim's
    /// absence still reads as "not installed". What fails is printed on stdout after `qxub-refused: `, which
    /// ``AgentConnection`` reports with the repair command; a failing `find` refuses too.
    static let trustCheck = [
        "w=; set --; d=$HOME/.qxub/agent",
        "[ -r \"$HOME/.qxub/agent-dir\" ] && read -r d < \"$HOME/.qxub/agent-dir\"",
        "for p in .qxub .qxub/bin .qxub/bin/qxub-shim .qxub/agent-dir \"$d\" \"$d\"/[0-9]*/ \"$d\"/[0-9]*/qxub-agent; do "
            + "[ -e \"$p\" ] || continue; [ -O \"$p\" ] || { echo \"\(refusedPrefix)$p \(notOwned)\"; exit 77; }; "
            + "set -- \"$@\" \"$p\"; done",
        "[ $# = 0 ] || w=$(find -H \"$@\" -prune \\( -perm -020 -o -perm -002 \\) "
            + "-exec printf \"%s \(groupWritable)\\n\" {} \\; 2>&1)",
        "[ -z \"$w\" ] || { echo \"\(refusedPrefix)$w\"; exit 77; }",
    ].joined(separator: "; ")

    /// The error for a session the trust check refused (nil when `output` holds no refusal). The agent is not
    /// offered for installation on the spot: the user should see that someone may have changed their files.
    static func trustRefusal(_ output: String, platform: String?) -> ClientError? {
        guard let start = output.firstRange(ofLiteral: refusedPrefix) else { return nil }
        let reasons = String(output[start.upperBound...]).trimmingWhitespace()
        let install = "qxub agent install" + (platform.map { " --platform \($0)" } ?? "")
        return ClientError(
            "refused to start qxub-agent on \(platform ?? "this machine"): \(reasons)",
            hint: "run `\(install)`: it replaces the shim and the agent and makes their directories private to you "
                + "(0700); remove a file or directory that is not yours first, and look for changes you did not make",
            exitCode: ExitCodes.unavailable)
    }

    /// What the trust check prints before its reasons.
    static let refusedPrefix = "qxub-refused: "
    static let notOwned = "is not owned by you, so another user could run code as you"
    static let groupWritable = "is writable by your group or others, so another user could run code as you"

    /// A private directory with a short path for control sockets (the socket path limit is about 104 bytes
    /// on macOS, and ssh adds 17 characters while binding).
    public static func controlDirectory() throws(ClientError) -> String {
        let directory: String
        if let explicit = Environment.get("QXUB_CONTROL_DIR"), !explicit.isEmpty {
            directory = explicit
        } else if let runtime = Environment.get("XDG_RUNTIME_DIR"), !runtime.isEmpty, FileSystem.isDirectory(runtime) {
            directory = runtime + "/qxub"
        } else {
            directory = "/tmp/qxub-cm-\(getuid())"
        }
        do {
            try FileSystem.createDirectories(directory, mode: 0o700)
        } catch {
            throw ClientError("cannot create the ssh control directory \(directory): \(error)", hint: "set QXUB_CONTROL_DIR to a private directory", exitCode: ExitCodes.unavailable)
        }
        var info = stat()
        guard stat(directory, &info) == 0, info.st_uid == getuid(), info.st_mode & 0o077 == 0 else {
            throw ClientError("the ssh control directory \(directory) is not private to you", hint: "remove it or set QXUB_CONTROL_DIR", exitCode: ExitCodes.unavailable)
        }
        return directory
    }

    /// True when the user's own ssh configuration already manages connection sharing for this host.
    public func userManagesControlPath() -> Bool {
        guard let run = try? runCollectingOutput(["ssh"] + configArguments + ["-G", remote.host], timeout: 10), run.exit == .exited(0) else { return false }
        for line in run.stdoutText.split(separator: "\n") where line.hasPrefix("controlpath ") {
            return line.dropFirst("controlpath ".count) != "none"
        }
        return false
    }

    var configArguments: [String] {
        var arguments: [String] = []
        if let config = remote.sshConfig { arguments += ["-F", config] }
        for option in remote.sshOptions { arguments += ["-o", option] }
        if let user = remote.user { arguments += ["-l", user] }
        if let identity = remote.identity { arguments += ["-i", identity] }
        return arguments
    }

    /// ssh with the user's options and our connection sharing.
    public func baseArguments(controlPath: String?) -> [String] {
        var arguments = ["ssh"] + configArguments
        if let controlPath {
            arguments += ["-o", "ControlPath=" + controlPath, "-o", "ControlPersist=" + remote.controlPersist]
        }
        return arguments
    }

    /// Our control socket for this platform (nil when the user's ssh config has its own).
    ///
    /// A live socket of ours answers at once (no process spawned); only without one is `ssh -G` asked
    /// whether the user's configuration shares connections itself.
    public func controlPath() throws(ClientError) -> String? {
        let safe = String(platform.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" })
        let ours = try Self.controlDirectory() + "/" + safe
        if Self.socketIsLive(ours) { return ours }
        return userManagesControlPath() ? nil : ours
    }

    /// Whether a master listens on the Unix socket at `path` (a connect, no ssh process).
    static func socketIsLive(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { FileDescriptor.close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        return result == 0
    }

    /// Makes sure a live master connection exists: a dead one (laptop slept, network changed) is cleared,
    /// a missing one is opened in the foreground so a passphrase or MFA prompt can use the terminal. Its
    /// stderr goes to a log file, never to a pipe someone waits on. Of several qxub that find no master,
    /// one opens it and the others wait for it (``MasterLock``).
    public func ensureMaster(controlPath: String?) throws(ClientError) {
        let base = baseArguments(controlPath: controlPath)
        var lock: MasterLock?
        defer { lock?.release() }
        if let controlPath {
            if Self.socketIsLive(controlPath) { return }
            // One master per platform: another qxub may be opening it (and showing an MFA prompt). Wait for
            // it, however long its login takes, then use its master.
            lock = try MasterLock.acquire(controlPath + ".lock") { holder in
                let who = holder.map { "another qxub (pid \($0))" } ?? "another qxub"
                try? FileDescriptor.writeAll(
                    2, "qxub: waiting for the connection to \(remote.host) (platform \(platform)) that \(who) is opening\n")
            }
            if Self.socketIsLive(controlPath) { return }
        } else if let check = try? runCollectingOutput(base + ["-O", "check", remote.host], timeout: 5), check.exit == .exited(0) {
            return
        }
        if let controlPath, FileSystem.exists(controlPath) {
            // A socket with no master behind it: ssh would fail or hang on it.
            unlink(controlPath)
        }
        let log = try Self.logPath()
        let fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        defer { if fd >= 0 { FileDescriptor.close(fd) } }
        var arguments = base + ["-o", "ControlMaster=auto", "-f", "-N", "-n"]
        // An unreachable host must not wait for the system's TCP timeout (minutes). ssh keeps the first
        // value it sees: a ConnectTimeout in the platform's ssh_options (earlier on the line) wins.
        arguments += ["-o", "ConnectTimeout=20"]
        // A master whose network died (a laptop that slept) notices within a minute and exits, instead of
        // holding sessions that never answer. The user's own values, earlier on the line, win.
        arguments += ["-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4"]
        if remote.agentForwarding { arguments.append("-A") }
        arguments.append(remote.host)
        let master: ChildProcess
        do {
            master = try ChildProcess.spawn(arguments, stdin: .null, stdout: .null, stderr: fd >= 0 ? .fileDescriptor(fd) : .inherit)
        } catch {
            throw ClientError("cannot run ssh: \(error)", hint: "install the OpenSSH client", exitCode: ExitCodes.unavailable)
        }
        let exit = master.wait()
        guard exit == .exited(0) else {
            let tail = FileSystem.readText(log).map { String($0.split(separator: "\n").suffix(5).joined(separator: "\n")) } ?? ""
            throw ClientError(
                "cannot connect to \(remote.host) (platform \(platform)): ssh \(exit)\(tail.isEmpty ? "" : "\n" + tail)",
                hint: "check that `ssh \(remote.host) true` works from this terminal",
                exitCode: ExitCodes.unavailable)
        }
    }

    /// Gets rid of a master that no longer carries sessions (its socket answers, its network is gone):
    /// asks it to exit, and if it does not (a hung process), takes its socket away, so the next
    /// ``ensureMaster(controlPath:)`` opens a fresh connection.
    ///
    /// `-O stop`, not `-O exit`: sessions of other qxub processes that still work go on to their end. A
    /// master of the user's own ssh configuration (no control path of ours) is never touched.
    public func discardMaster(controlPath: String?) {
        guard let controlPath else {
            ClientLog.write("ssh master for \(platform) is managed by your ssh config: left alone")
            return
        }
        let stop = try? runCollectingOutput(baseArguments(controlPath: controlPath) + ["-O", "stop", remote.host], timeout: 3)
        ClientLog.write("ssh master for \(platform) discarded (ssh -O stop: \(stop.map { "\($0.exit)" } ?? "could not run"))")
        if FileSystem.exists(controlPath) { unlink(controlPath) }
    }

    /// The argv of the session: ssh over the master, running the agent bootstrap, never prompting.
    public func sessionArguments(controlPath: String?) -> [String] {
        var arguments = baseArguments(controlPath: controlPath) + ["-o", "BatchMode=yes", "-T"]
        if remote.agentForwarding { arguments.append("-A") }
        return arguments + [remote.host, Self.agentCommand()]
    }

    /// `~/.local/state/qxub/ssh.log`: what ssh masters printed.
    static func logPath() throws(ClientError) -> String {
        let base = Environment.get("XDG_STATE_HOME").flatMap { $0.isEmpty ? nil : $0 } ?? (Environment.get("HOME") ?? "/tmp") + "/.local/state"
        let directory = base + "/qxub"
        try? FileSystem.createDirectories(directory, mode: 0o700)
        return directory + "/ssh.log"
    }
}
