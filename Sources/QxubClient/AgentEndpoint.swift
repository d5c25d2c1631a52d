import QxubProtocol
import QxubSystem

/// How to start a session with the agent for a platform: a local child, or ssh to a cluster.
package struct AgentEndpoint: Sendable {
    package let platform: Platform
    /// The environment's word on timeouts and on where the local agent is.
    package let settings: ClientSettings
    /// The name used in messages ("the local agent", "gadi").
    package var peerName: String { platform.remote == nil ? "the local agent" : platform.name }

    package init(platform: Platform, settings: ClientSettings) {
        self.platform = platform
        self.settings = settings
    }

    /// The hello for this platform's sessions: deflate only where bytes cross a network (a local agent is a
    /// pipe between two processes on one machine).
    package func hello(heartbeat: Bool) -> Hello {
        AgentConnection.hello(heartbeat: heartbeat, compression: platform.remote != nil)
    }

    /// Opens a new session (for a remote platform: after making sure the ssh master is alive).
    /// - Parameters:
    ///   - heartbeat: the caller pings every few seconds (see ``AgentConnection/hello(heartbeat:)``).
    ///   - bypassingUserMaster: run ssh with `ControlPath=none` (no master at all): the master of the user's
    ///     own ssh config hung, and qxub never kills it.
    package func connect(
        loop: EventLoop,
        heartbeat: Bool = true,
        bypassingUserMaster: Bool = false
    ) throws(ClientError) -> AgentConnection {
        let command: [String]
        if let remote = platform.remote {
            let launcher = SSHLauncher(platform: platform.name, remote: remote)
            if bypassingUserMaster {
                // Before the user's options: ssh keeps the first value it sees.
                let arguments = launcher.sessionArguments(controlPath: nil)
                command = [arguments[0], "-o", "ControlPath=none", "-o", "ControlMaster=no"] + arguments.dropFirst()
            } else {
                let controlPath = try launcher.controlPath()
                try launcher.ensureMaster(controlPath: controlPath)
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
        return try connect(loop: old.loop, heartbeat: heartbeat, bypassingUserMaster: bypass)
    }

    /// Drops the platform's ssh master so the next ``connect(loop:heartbeat:bypassingUserMaster:)`` opens a
    /// new one. Nothing to do for the local agent.
    package func discardMaster() {
        guard let remote = platform.remote else { return }
        let launcher = SSHLauncher(platform: platform.name, remote: remote)
        launcher.discardMaster(controlPath: try? launcher.controlPath())
    }
}
