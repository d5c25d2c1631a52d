import QxubAgent
import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("The agent's log")
struct AgentLogTests {
    @Test("a log whose directory does not exist yet makes it (a session whose jobs all go to a state_root)")
    func missingDirectory() throws {
        let root = "/tmp/qxub-agentlog-\(getpid())-\(Int.random(in: 0..<1_000_000))"
        defer { _ = try? runCollectingOutput(["rm", "-rf", root]) }
        let log = AgentLog(path: root + "/state/agent.log")
        log.write("hello from the agent")
        let text = try #require(FileSystem.readText(root + "/state/agent.log"))
        #expect(text.hasSuffix("] hello from the agent\n"), "\(text)")
    }
}
