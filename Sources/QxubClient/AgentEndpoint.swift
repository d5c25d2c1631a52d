import QxubProtocol
import QxubSystem

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How to start a session with the agent for a platform: a local child, or ssh to a cluster.
package struct AgentEndpoint: Sendable {
    package let platform: Platform
    /// The environment's word on timeouts and on where the local agent is.
    package let settings: ClientSettings
    /// The name used in messages ("the local agent", "gadi").
    package var peerName: String { platform.remote == nil ? "the local agent" : platform.name }

    /// Sessions of a remote platform go through its session holder when one answers, and a direct session
    /// starts one (``SessionHolder``); false for the holder itself and for `qxub doctor`, which measures the
    /// direct path.
    package var usesHolder: Bool

    package init(platform: Platform, settings: ClientSettings, usesHolder: Bool = true) {
        self.platform = platform
        self.settings = settings
        self.usesHolder = usesHolder
    }

    /// The holder's socket for this platform (nil for the local agent, with holders off, or when the control
    /// directory cannot be made).
    package func holderSocketPath() -> String? {
        guard let remote = platform.remote, remote.sessionPersist > 0,
            let directory = try? SSHLauncher.controlDirectory()
        else { return nil }
        return directory + "/" + HolderClient.socketName(platform: platform.name)
    }

    /// The hello for this platform's sessions: deflate only where bytes cross a network (a local agent is a
    /// pipe between two processes on one machine).
    package func hello(heartbeat: Bool) -> Hello {
        var hello = AgentConnection.hello(heartbeat: heartbeat, compression: platform.remote != nil)
        hello.stateRoot = platform.stateRoot ?? ""
        return hello
    }

    /// Opens a new session (for a remote platform: after making sure the ssh master is alive).
    /// - Parameters:
    ///   - heartbeat: the caller pings every few seconds (see ``AgentConnection/hello(heartbeat:)``).
    ///   - bypassingUserMaster: run ssh with `ControlPath=none` (no master at all): the master of the user's
    ///     own ssh config hung, and qxub never kills it.
    ///   - firstContact: nothing was done yet (not a reconnect): a warm fork that would have to log in hands
    ///     the command back (``ClientError/needsForeground``) instead of trying.
    package func connect(
        loop: EventLoop,
        heartbeat: Bool = true,
        bypassingUserMaster: Bool = false,
        firstContact: Bool = true
    ) throws(ClientError) -> AgentConnection {
        let command: [String]
        var startsHolder = false
        if usesHolder, !bypassingUserMaster, let path = holderSocketPath() {
            let hello = AgentConnection.hello(heartbeat: heartbeat)
            switch HolderClient.connect(path: path, hello: hello) {
            case .connected(let holder):
                return AgentConnection(
                    holder: holder,
                    peerName: peerName,
                    platformName: platform.name,
                    loop: loop,
                    hello: hello,
                    timing: settings.timing
                )
            case .absent(let stale):
                if stale { ClientLog.write("session holder for \(platform.name): stale socket \(path)") }
                startsHolder = true
            case .foreign(let peer):
                // The control directory is private, so this should not happen; never fight over it.
                ClientLog.write(
                    "session holder socket \(path) is served by \(peer.map { "uid \($0.userID)" } ?? "an unknown peer"), not by you: not used"
                )
            case .noAnswer(let pid, let reason):
                // A holder that cannot answer in time serves nobody well: it is replaced; its other clients
                // reconnect (to the new one, or directly) and resume from their byte offsets.
                ClientLog.write("session holder for \(platform.name) (pid \(pid)): \(reason); replaced")
                if pid > 0 { kill(pid, SIGTERM) }
                startsHolder = true
            }
        }
        if let remote = platform.remote {
            let launcher = SSHLauncher(platform: platform.name, remote: remote)
            // Without a terminal (a warm fork): a command that has done nothing yet is handed back to the qxub
            // in the foreground; one with a session behind it logs in again only where no prompt is needed.
            let noPrompt = settings.mayPrompt ? [] : ["-o", "BatchMode=yes"]
            if bypassingUserMaster {
                if !settings.mayPrompt && firstContact { throw Self.needsForeground(platform.name) }
                // Before the user's options: ssh keeps the first value it sees.
                let arguments = launcher.sessionArguments(controlPath: nil)
                command =
                    [arguments[0], "-o", "ControlPath=none", "-o", "ControlMaster=no"] + noPrompt
                    + arguments.dropFirst()
            } else {
                let controlPath = try launcher.controlPath()
                if !settings.mayPrompt, firstContact, controlPath.map(SSHLauncher.socketIsLive) != true {
                    throw Self.needsForeground(platform.name)
                }
                try launcher.ensureMaster(controlPath: controlPath, extraOptions: noPrompt)
                command = launcher.sessionArguments(controlPath: controlPath)
            }
        } else {
            command = [try AgentLocator.localAgent(explicit: settings.agent), "serve"]
        }
        do {
            let connection = try AgentConnection(
                command: command,
                peerName: peerName,
                platformName: platform.remote == nil ? nil : platform.name,
                loop: loop,
                hello: hello(heartbeat: heartbeat),
                timing: settings.timing
            )
            connection.bypassesUserMaster = bypassingUserMaster
            if startsHolder {
                // Once this session's agent answers: the master is up (any prompt was answered here, in the
                // foreground) and the agent works, so the holder will not fail where this session did not.
                let platform = platform
                connection.onReady = {
                    SessionHolderLauncher.start(platform: platform.name, configFile: platform.remote?.configFile)
                }
            }
            return connection
        } catch let error as ClientError {
            throw error
        } catch {
            throw ClientError("cannot start a session with \(peerName): \(error)", exitCode: ExitCodes.unavailable)
        }
    }

    /// A new session after `old` ended, on its loop. When `old` stalled or fell silent, the platform's ssh
    /// master (whose socket answers while its network may be gone, or whose process hangs) is not used again:
    /// qxub's own master is discarded first, so the new session opens a fresh one; a master of the user's own
    /// ssh configuration is never killed (qxub cannot know what else runs over it), so the new session, and
    /// every later one of this command, runs ssh without it (`ControlPath=none`).
    /// - Parameter notify: told, in a sentence for the user, what was done with the master.
    package func reconnect(
        replacing old: AgentConnection,
        heartbeat: Bool = true,
        notify: (String) -> Void = { _ in }
    ) throws(ClientError) -> AgentConnection {
        var bypass = old.bypassesUserMaster
        if old.endedOnDeadConnection, !bypass, let remote = platform.remote {
            let launcher = SSHLauncher(platform: platform.name, remote: remote)
            if let controlPath = try? launcher.controlPath() {
                launcher.discardMaster(controlPath: controlPath)
                notify("the ssh master of \(peerName) no longer answers: discarded; a new one is opened")
            } else {
                bypass = true
                ClientLog.write(
                    "ssh master for \(platform.name) is managed by your ssh config: left alone, sessions use ControlPath=none"
                )
                notify(
                    "the ssh master of your ssh config for \(remote.host) no longer answers: qxub leaves it running "
                        + "and connects without it (ControlPath=none) for the rest of this session"
                )
            }
        }
        do {
            return try connect(loop: old.loop, heartbeat: heartbeat, bypassingUserMaster: bypass, firstContact: false)
        } catch  where !settings.mayPrompt {
            // A warm fork logs in again only where no prompt is needed (BatchMode): say why it could not.
            throw ClientError(
                error.message + "\nthe connection to \(peerName) was lost, and the new login (without a prompt: this "
                    + "qxub runs for you in the session holder, without a terminal) failed",
                hint: "run the command again (or `qxub attach JOB` to follow a job that was submitted)",
                exitCode: ExitCodes.connectionLost
            )
        }
    }

    private static func needsForeground(_ platform: String) -> ClientError {
        var error = ClientError(
            "no ssh master for \(platform) is up, and opening one may prompt",
            exitCode: ExitCodes.unavailable
        )
        error.needsForeground = true
        return error
    }

    /// Drops the platform's ssh master so the next ``connect(loop:heartbeat:bypassingUserMaster:)`` opens a
    /// new one. Nothing to do for the local agent.
    package func discardMaster() {
        guard let remote = platform.remote else { return }
        let launcher = SSHLauncher(platform: platform.name, remote: remote)
        launcher.discardMaster(controlPath: try? launcher.controlPath())
    }
}
