import QxubProtocol

/// What the client takes from its environment, read once where qxub starts (QxubCLI) and passed down, so
/// nothing below reads environment variables and tests set each value directly.
package struct ClientSettings: Sendable, Equatable {
    /// The session timeouts (`QXUB_HELLO_TIMEOUT`, `QXUB_HEARTBEAT_INTERVAL`).
    package var timing: AgentConnection.Timing
    /// The agent for local sessions and for installing (`QXUB_AGENT`); nil finds it beside qxub.
    package var agent: String?
    /// The shim installed beside the agent (`QXUB_SHIM`); nil takes the one beside the agent.
    package var shim: String?
    /// Whether this process may start an ssh login that prompts (false in a warm fork of a session holder,
    /// which has no terminal: it hands such a command back, ``ClientError/needsForeground``).
    package var mayPrompt = true

    package init(timing: AgentConnection.Timing = .init(), agent: String? = nil, shim: String? = nil) {
        self.timing = timing
        self.agent = agent
        self.shim = shim
    }

    /// The settings an environment gives (`environment` looks a variable up): unset, empty or invalid values
    /// leave their defaults.
    package init(environment: (String) -> String?) {
        self.init(
            timing: AgentConnection.Timing(environment: environment),
            agent: environment("QXUB_AGENT").flatMap { $0.isEmpty ? nil : $0 },
            shim: environment("QXUB_SHIM")
        )
    }
}
