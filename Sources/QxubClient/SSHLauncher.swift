import QxubProtocol
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// Runs the system `ssh` for a remote platform, so the user's ~/.ssh/config, keys, agent, ProxyJump and
/// MFA keep working, and reuses one master connection (ControlMaster/ControlPersist) for every call.
package struct SSHLauncher: Sendable {
    package let platform: String
    package let remote: Platform.Remote

    package init(platform: String, remote: Platform.Remote) {
        self.platform = platform
        self.remote = remote
    }

    /// The remote command that starts the agent: constant, and the same for bash, zsh and tcsh.
    package static func agentCommand(versions: ClosedRange<UInt32> = ProtocolConstants.versions) -> String {
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
            exitCode: ExitCodes.unavailable
        )
    }

    /// What the trust check prints before its reasons.
    static let refusedPrefix = "qxub-refused: "
    static let notOwned = "is not owned by you, so another user could run code as you"
    static let groupWritable = "is writable by your group or others, so another user could run code as you"

    /// The private directory for control sockets (``ControlDirectory``): created by qxub, or checked to be
    /// yours, not a symbolic link, and writable by nobody else.
    package static func controlDirectory() throws(ClientError) -> String {
        try ControlDirectory.make(ControlDirectory.current()).path
    }

    /// True when the user's own ssh configuration already manages connection sharing for this host.
    package func userManagesControlPath() -> Bool {
        guard let run = try? runCollectingOutput(["ssh"] + configArguments + ["-G", remote.host], timeout: 10),
            run.exit == .exited(0)
        else { return false }
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
    package func baseArguments(controlPath: String?) -> [String] {
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
    package func controlPath() throws(ClientError) -> String? {
        let ours = try Self.controlDirectory() + "/" + ControlDirectory.socketName(platform: platform)
        if Self.socketIsLive(ours) { return ours }
        return userManagesControlPath() ? nil : ours
    }

    /// Whether a master listens on the Unix socket at `path` (a connect, no ssh process).
    static func socketIsLive(_ path: String) -> Bool {
        ControlDirectory.listener(path) != nil
    }

    /// Makes sure a live master connection exists: a dead one (laptop slept, network changed) is cleared,
    /// a missing one is opened in the foreground so a passphrase or MFA prompt can use the terminal. Its
    /// stderr goes to a log file, never to a pipe someone waits on. Of several qxub that find no master,
    /// one opens it and the others wait for it (``MasterLock``).
    /// - Parameter extraOptions: options for the master's ssh (`-o BatchMode=yes` where no prompt may be shown).
    package func ensureMaster(controlPath: String?, extraOptions: [String] = []) throws(ClientError) {
        let base = baseArguments(controlPath: controlPath)
        var lock: MasterLock?
        defer { lock?.release() }
        // Checked now and again once a master listens: nothing is sent through a socket in a directory that
        // was swapped meanwhile, or through a socket another user serves.
        let directory = try controlPath.map { path throws(ClientError) in
            try ControlDirectory.checked(FileSystem.directoryName(path))
        }
        if let controlPath, let directory {
            if Self.socketIsLive(controlPath) { return try directory.verify(socket: controlPath) }
            // One master per platform: another qxub may be opening it (and showing an MFA prompt). Wait for
            // it, however long its login takes, then use its master.
            lock = try MasterLock.acquire(controlPath + ".lock") { holder in
                let who = holder.map { "another qxub (pid \($0))" } ?? "another qxub"
                try? FileDescriptor.writeAll(
                    2,
                    "qxub: waiting for the connection to \(remote.host) (platform \(platform)) that \(who) is opening\n"
                )
            }
            if Self.socketIsLive(controlPath) { return try directory.verify(socket: controlPath) }
        } else if let check = try? runCollectingOutput(base + ["-O", "check", remote.host], timeout: 5),
            check.exit == .exited(0)
        {
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
        arguments += extraOptions
        arguments.append(remote.host)
        let master: ChildProcess
        do {
            master = try ChildProcess.spawn(
                arguments,
                stdin: .null,
                stdout: .null,
                stderr: fd >= 0 ? .fileDescriptor(fd) : .inherit
            )
        } catch {
            throw ClientError(
                "cannot run ssh: \(error)",
                hint: "install the OpenSSH client",
                exitCode: ExitCodes.unavailable
            )
        }
        let exit = master.wait()
        guard exit == .exited(0) else {
            let tail =
                FileSystem.readText(log).map { String($0.split(separator: "\n").suffix(5).joined(separator: "\n")) }
                ?? ""
            throw ClientError(
                "cannot connect to \(remote.host) (platform \(platform)): ssh \(exit)\(tail.isEmpty ? "" : "\n" + tail)",
                hint: "check that `ssh \(remote.host) true` works from this terminal",
                exitCode: ExitCodes.unavailable
            )
        }
        if let controlPath, let directory {
            try directory.verify(socket: controlPath)
            // Its pid, for ``discardMaster(controlPath:)``: once hung, it can no longer say it.
            if let check = try? runCollectingOutput(base + ["-O", "check", remote.host], timeout: 5),
                let pid = Self.masterPid(check.stderrText)
            {
                MasterTeardown.record(controlPath: controlPath, pid: pid)
            }
        }
    }

    /// The pid in `ssh -O check`'s answer, `Master running (pid=1234)`.
    static func masterPid(_ answer: String) -> pid_t? {
        guard let start = answer.firstRange(ofLiteral: "(pid=") else { return nil }
        return pid_t(answer[start.upperBound...].prefix { $0.isNumber })
    }

    /// Gets rid of a master that no longer carries sessions (its socket answers, its network is gone): asks
    /// it to stop listening, and if it does not answer (a hung or stopped process), ends it, SIGTERM then
    /// SIGKILL, before its socket is removed. A hung master left running would, when it exits at last, unlink
    /// the socket path, which by then is the next master's.
    ///
    /// `-O stop`, not `-O exit`: sessions of other qxub processes that still work go on to their end (a
    /// master that stops listening removes its socket itself, and no longer touches the path). Done under the
    /// ``MasterLock``, so no other qxub opens a master at the path meanwhile; a master opened by another qxub
    /// while this one waited for the lock is left alone. A master of the user's own ssh configuration (no
    /// control path of ours) is never touched.
    package func discardMaster(controlPath: String?) {
        guard let controlPath else {
            ClientLog.write("ssh master for \(platform) is managed by your ssh config: left alone")
            return
        }
        let stale = MasterTeardown.recordedMaster(controlPath: controlPath)
        let lock = try? MasterLock.acquire(controlPath + ".lock") { _ in }
        defer { lock?.release() }
        let current = MasterTeardown.recordedMaster(controlPath: controlPath)
        if let current, current != stale {
            ClientLog.write("ssh master for \(platform): pid \(current) opened meanwhile by another qxub, kept")
            return
        }
        let stop = try? runCollectingOutput(
            baseArguments(controlPath: controlPath) + ["-O", "stop", remote.host],
            timeout: 3
        )
        var ended = ""
        if stop?.exit != .exited(0), let current {
            ended = ", " + MasterTeardown(pid: current).run()
        }
        ClientLog.write(
            "ssh master for \(platform) discarded (ssh -O stop: \(stop.map { "\($0.exit)" } ?? "could not run")\(ended))"
        )
        if FileSystem.exists(controlPath) { unlink(controlPath) }
    }

    /// The argv of the session: ssh over the master, running the agent bootstrap, never prompting.
    package func sessionArguments(controlPath: String?) -> [String] {
        var arguments = baseArguments(controlPath: controlPath) + ["-o", "BatchMode=yes", "-T"]
        if remote.agentForwarding { arguments.append("-A") }
        return arguments + [remote.host, Self.agentCommand()]
    }

    /// `~/.local/state/qxub/ssh.log`: what ssh masters printed.
    static func logPath() throws(ClientError) -> String {
        let base =
            Environment.get("XDG_STATE_HOME").flatMap { $0.isEmpty ? nil : $0 } ?? (Environment.get("HOME") ?? "/tmp")
            + "/.local/state"
        let directory = base + "/qxub"
        try? FileSystem.createDirectories(directory, mode: 0o700)
        return directory + "/ssh.log"
    }
}
