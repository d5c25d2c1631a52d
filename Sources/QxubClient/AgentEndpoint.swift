import QxubProtocol
import QxubSystem

/// How to start a session with the agent for a platform: a local child, or ssh to a cluster.
public struct AgentEndpoint: Sendable {
    public let platform: Platform
    /// The name used in messages ("the local agent", "gadi").
    public var peerName: String { platform.remote == nil ? "the local agent" : platform.name }

    public init(platform: Platform) {
        self.platform = platform
    }

    /// Opens a new session (for a remote platform: after making sure the ssh master is alive).
    /// - Parameter heartbeat: the caller pings every few seconds (see ``AgentConnection/hello(heartbeat:)``).
    public func connect(loop: EventLoop, heartbeat: Bool = true) throws(ClientError) -> AgentConnection {
        let command: [String]
        if let remote = platform.remote {
            let launcher = SSHLauncher(platform: platform.name, remote: remote)
            let controlPath = try launcher.controlPath()
            try launcher.ensureMaster(controlPath: controlPath)
            command = launcher.sessionArguments(controlPath: controlPath)
        } else {
            command = [try AgentLocator.localAgent(), "serve"]
        }
        do {
            return try AgentConnection(command: command, peerName: peerName, platformName: platform.remote == nil ? nil : platform.name, loop: loop, hello: AgentConnection.hello(heartbeat: heartbeat))
        } catch let error as ClientError {
            throw error
        } catch {
            throw ClientError("cannot start a session with \(peerName): \(error)", exitCode: ExitCodes.unavailable)
        }
    }

    /// A new session after `old` ended, on its loop. When `old` stalled or fell silent, the platform's ssh
    /// master (whose socket answers while its network may be gone) is discarded first, so the new
    /// session does not hang the same way.
    public func reconnect(replacing old: AgentConnection, heartbeat: Bool = true) throws(ClientError) -> AgentConnection {
        if old.endedOnDeadConnection { discardMaster() }
        return try connect(loop: old.loop, heartbeat: heartbeat)
    }

    /// Drops the platform's ssh master so the next ``connect(loop:heartbeat:)`` opens a new one. Nothing
    /// to do for the local agent.
    public func discardMaster() {
        guard let remote = platform.remote else { return }
        let launcher = SSHLauncher(platform: platform.name, remote: remote)
        launcher.discardMaster(controlPath: try? launcher.controlPath())
    }
}
