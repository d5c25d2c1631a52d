import ArgumentParser
import QxubClient
import QxubSystem

extension QxubCommand {
    /// `qxub agent install|status|uninstall --platform NAME`
    package struct Agent: ParsableCommand {
        package static let configuration = CommandConfiguration(
            commandName: "agent",
            abstract: "Install, inspect or remove qxub-agent on a cluster.",
            subcommands: [Install.self, Status.self, Uninstall.self]
        )

        package init() {}

        static func installer(_ place: PlatformOptions) throws(ClientError) -> AgentInstaller {
            let platform = try place.platform()
            guard let remote = platform.remote else {
                throw ClientError(
                    "platform \(platform.name) runs on this machine, whose agent ships with qxub",
                    hint: "name a remote platform: --platform NAME",
                    exitCode: ExitCodes.usage
                )
            }
            return AgentInstaller(platform: platform.name, remote: remote, settings: .fromProcess())
        }

        /// The installer, for a change of the installed agents: the platform's session holder is stopped first,
        /// so the next qxub talks to the agent now installed (or finds none), not to the one the holder runs.
        static func changingInstaller(_ place: PlatformOptions) throws(ClientError) -> AgentInstaller {
            let installer = try installer(place)
            let platform = try place.platform()
            if let path = AgentEndpoint(platform: platform, settings: .fromProcess()).holderSocketPath() {
                HolderClient.stop(at: path)
            }
            return installer
        }

        package struct Install: ParsableCommand {
            package static let configuration = CommandConfiguration(
                commandName: "install",
                abstract: "Send the static agent to the cluster through the ssh connection (older versions stay)."
            )
            @OptionGroup var place: PlatformOptions
            @Option(
                name: .customLong("dir"),
                help: "Install somewhere else than ~/.qxub/agent (a noexec or full home)."
            )
            var directory: String?
            package init() {}
            package func run() throws {
                let installed = try CLIFailure.catching { () throws(ClientError) -> AgentInstaller.Installed in
                    try Agent.changingInstaller(place).install(directory: directory)
                }
                // The remote side's words first, as such; qxub's own success line last.
                try? FileDescriptor.writeAll(2, installed.remoteStderrReport)
                print(installed.line)
            }
        }

        package struct Status: ParsableCommand {
            package static let configuration = CommandConfiguration(
                commandName: "status",
                abstract: "List the agents installed on the cluster."
            )
            @OptionGroup var place: PlatformOptions
            package init() {}
            package func run() throws {
                print(
                    try CLIFailure.catching { () throws(ClientError) -> String in try Agent.installer(place).status() },
                    terminator: ""
                )
            }
        }

        package struct Uninstall: ParsableCommand {
            package static let configuration = CommandConfiguration(
                commandName: "uninstall",
                abstract: "Remove the installed agents and the shim (job records stay)."
            )
            @OptionGroup var place: PlatformOptions
            package init() {}
            package func run() throws {
                print(
                    try CLIFailure.catching { () throws(ClientError) -> String in
                        try Agent.changingInstaller(place).uninstall()
                    }
                )
            }
        }
    }
}

extension String {
    func replacingOccurrencesOfPrefix(_ prefix: String, with replacement: String) -> String {
        hasPrefix(prefix) ? replacement + dropFirst(prefix.count) : self
    }
}
