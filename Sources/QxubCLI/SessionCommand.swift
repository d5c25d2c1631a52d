import ArgumentParser
import QxubClient
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

extension QxubCommand {
    /// `qxub session status|stop [--platform NAME]`, and the hidden `serve` that a qxub starts in the
    /// background: the warm session holders of remote platforms (docs/remote-setup.md).
    package struct Session: ParsableCommand {
        package static let configuration = CommandConfiguration(
            commandName: "session",
            abstract: "Show or stop the warm sessions that qxub keeps open to remote platforms.",
            subcommands: [Status.self, Stop.self, Serve.self]
        )

        package init() {}

        /// The named platform, or every configured remote platform.
        static func platforms(_ place: PlatformOptions) throws(ClientError) -> [Platform] {
            if place.platformName != nil { return [try place.platform()] }
            let configuration = try place.configuration()
            let names = configuration.value("platforms")?.map?.keys.sorted() ?? []
            var platforms: [Platform] = []
            for name in names {
                let platform = try Platform.resolve(name, configuration: configuration)
                if platform.remote != nil { platforms.append(platform) }
            }
            return platforms
        }

        /// The holder serving `platform`, when one listens (and is the user's own).
        static func holder(_ platform: Platform) -> (path: String, pid: pid_t)? {
            let endpoint = AgentEndpoint(platform: platform, settings: .fromProcess())
            guard let path = endpoint.holderSocketPath(), let pid = HolderClient.running(at: path) else { return nil }
            return (path, pid)
        }

        package struct Status: ParsableCommand {
            package static let configuration = CommandConfiguration(
                commandName: "status",
                abstract: "Say which platforms have a session holder running."
            )
            @OptionGroup var place: PlatformOptions
            package init() {}
            package func run() throws {
                try CLIFailure.catching { () throws(ClientError) -> Void in
                    let platforms = try Session.platforms(place)
                    if platforms.isEmpty { print("no remote platforms configured") }
                    for platform in platforms {
                        if platform.remote?.sessionPersist == 0 {
                            print("\(platform.name): no holder (session_persist: 0)")
                        } else if let holder = Session.holder(platform) {
                            print("\(platform.name): holder running (pid \(holder.pid), socket \(holder.path))")
                        } else {
                            print("\(platform.name): no holder")
                        }
                    }
                }
            }
        }

        package struct Stop: ParsableCommand {
            package static let configuration = CommandConfiguration(
                commandName: "stop",
                abstract: "Stop session holders (their clients go on over direct sessions, nothing lost)."
            )
            @OptionGroup var place: PlatformOptions
            package init() {}
            package func run() throws {
                try CLIFailure.catching { () throws(ClientError) -> Void in
                    for platform in try Session.platforms(place) {
                        guard let path = AgentEndpoint(platform: platform, settings: .fromProcess()).holderSocketPath(),
                            let pid = HolderClient.stop(at: path)
                        else {
                            print("\(platform.name): no holder")
                            continue
                        }
                        print("\(platform.name): holder stopped (pid \(pid))")
                    }
                }
            }
        }

        /// The holder itself, started in the background by a qxub whose direct session opened.
        package struct Serve: ParsableCommand {
            package static let configuration = CommandConfiguration(
                commandName: "serve",
                abstract: "Serve a platform's warm session to local qxub processes (started by qxub itself).",
                shouldDisplay: false
            )
            @OptionGroup var place: PlatformOptions
            package init() {}
            package func run() throws {
                let code = try CLIFailure.catching { () throws(ClientError) -> Int32 in
                    let platform = try place.platform()
                    let endpoint = AgentEndpoint(platform: platform, settings: .fromProcess())
                    guard let remote = platform.remote, let path = endpoint.holderSocketPath() else {
                        throw ClientError(
                            "platform \(platform.name) has no session holder (a local platform, or session_persist: 0)",
                            exitCode: ExitCodes.usage
                        )
                    }
                    let holder = SessionHolder(endpoint: endpoint, socketPath: path, persist: remote.sessionPersist)
                    holder.warmFork = { WarmStartFork.fork($0, descriptors: $1, connection: $2) }
                    WarmStartFork.warmUp()
                    return holder.run()
                }
                if code != 0 { throw ExitCode(code) }
            }
        }
    }
}
