import QxubClient
import QxubProtocol
import Testing

/// The client's settings come from the environment once, at the entry; these rows pin what each value
/// gives (the same variables, defaults and ranges as when the client read them itself).
@Suite("Client settings from the environment")
struct ClientSettingsTests {
    struct Row: Sendable, CustomTestStringConvertible {
        let environment: [String: String]
        let expected: ClientSettings
        var testDescription: String {
            environment.isEmpty
                ? "nothing set"
                : environment.sorted { $0.key < $1.key }.map { "\($0)=\($1)" }
                    .joined(separator: " ")
        }
    }

    static let rows: [Row] = [
        Row(environment: [:], expected: ClientSettings(timing: .init(helloTimeout: 20, heartbeatInterval: 10))),
        Row(environment: ["QXUB_HELLO_TIMEOUT": "3"], expected: ClientSettings(timing: .init(helloTimeout: 3))),
        Row(environment: ["QXUB_HELLO_TIMEOUT": "0.5"], expected: ClientSettings(timing: .init(helloTimeout: 0.5))),
        Row(environment: ["QXUB_HELLO_TIMEOUT": "0"], expected: ClientSettings()),
        Row(environment: ["QXUB_HELLO_TIMEOUT": "-4"], expected: ClientSettings()),
        Row(environment: ["QXUB_HELLO_TIMEOUT": "soon"], expected: ClientSettings()),
        Row(
            environment: ["QXUB_HEARTBEAT_INTERVAL": "0.2"],
            expected: ClientSettings(timing: .init(heartbeatInterval: 0.2))
        ),
        Row(
            environment: ["QXUB_HEARTBEAT_INTERVAL": "0.1"],
            expected: ClientSettings(timing: .init(heartbeatInterval: 0.1))
        ),
        Row(
            environment: ["QXUB_HEARTBEAT_INTERVAL": "10"],
            expected: ClientSettings(timing: .init(heartbeatInterval: 10))
        ),
        // Longer than the agent's silence limit allows, or too short to be a heartbeat: ignored.
        Row(environment: ["QXUB_HEARTBEAT_INTERVAL": "10.5"], expected: ClientSettings()),
        Row(environment: ["QXUB_HEARTBEAT_INTERVAL": "0.05"], expected: ClientSettings()),
        Row(environment: ["QXUB_HEARTBEAT_INTERVAL": "fast"], expected: ClientSettings()),
        Row(environment: ["QXUB_AGENT": "/opt/qxub-agent"], expected: ClientSettings(agent: "/opt/qxub-agent")),
        Row(environment: ["QXUB_AGENT": ""], expected: ClientSettings()),
        Row(environment: ["QXUB_SHIM": "/opt/qxub-shim"], expected: ClientSettings(shim: "/opt/qxub-shim")),
    ]

    @Test("each variable gives its value; unset, empty or out of range leaves the default", arguments: rows)
    func fromEnvironment(row: Row) {
        #expect(ClientSettings(environment: { row.environment[$0] }) == row.expected)
    }

    @Test("the defaults: a 20 s hello timeout, the protocol's heartbeat interval, the agent found beside qxub")
    func defaults() {
        let settings = ClientSettings()
        #expect(settings.timing.helloTimeout == 20)
        #expect(settings.timing.heartbeatInterval == ProtocolConstants.heartbeatInterval)
        #expect(settings.agent == nil)
        #expect(settings.shim == nil)
    }
}
