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

    /// After a session stalled (see ``AgentConnection/stalled``): drops the platform's ssh master so the
    /// next ``connect(loop:heartbeat:)`` opens a new one. Nothing to do for the local agent.
    public func discardMaster() {
        guard let remote = platform.remote else { return }
        let launcher = SSHLauncher(platform: platform.name, remote: remote)
        launcher.discardMaster(controlPath: try? launcher.controlPath())
    }
}
