import QxubClient
import QxubProtocol
import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("AgentConnection")
struct AgentConnectionTests {
    @Test("the local agent's session offers no deflate (a pipe on one machine); a remote session's hello does")
    func compressionOnlyOverNetworks() {
        let local = AgentEndpoint(platform: .local, settings: ClientSettings(agent: "/bin/false"))
        #expect(!local.hello(heartbeat: true).capabilities.contains(ProtocolConstants.capabilityDeflate))
        #expect(local.hello(heartbeat: true).capabilities.contains(ProtocolConstants.capabilitySplitReplies))
        #expect(AgentConnection.hello().capabilities.contains(ProtocolConstants.capabilityDeflate))
    }

    @Test("abandon ends a session that is still starting: its process is killed and reaped before it returns")
    func abandon() throws {
        let connection = try AgentConnection(
            command: ["/bin/sleep", "600"],
            peerName: "the test agent",
            loop: EventLoop(),
            hello: AgentConnection.hello(heartbeat: false)
        )
        let pid = connection.processID
        #expect(kill(pid, 0) == 0, "the process runs")
        connection.abandon()
        #expect(connection.isClosed)
        // Reaped, not a zombie: the pid names no process any more.
        #expect(kill(pid, 0) == -1 && errno == ESRCH)
    }
}
