// qxub-agent: the static binary that runs on the cluster. Thin: all logic lives in QxubAgent.
//
// This target builds in the Swift 5 language mode (see Package.swift): in Swift 6 mode, top-level code and
// `@main` are main-actor isolated, and their dynamic executor checks alone link Swift's concurrency
// runtime and libdispatch (0.8 MB) into the static binary. Nothing here is concurrent.
import QxubAgent
import QxubProtocol
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

exit(AgentMain.run(Array(CommandLine.arguments.dropFirst())))

enum AgentMain {
    static let usage = """
        usage: qxub-agent serve        speak the qxub protocol on stdin/stdout (started by qxub)
               qxub-agent keeper --dir DIR --rows R --cols C --grace SECONDS [--term TERM] -- COMMAND...
                                       hold an interactive job's terminal (started by the agent)
               qxub-agent --version    print the version, protocol range and platform
        """

    static func run(_ arguments: [String]) -> Int32 {
        switch arguments.first {
        case "serve":
            // The environment is read here, once: the library takes it as options.
            return AgentServer.serve(options: AgentOptions.fromEnvironment(Environment.all()), log: printError)
        case KeeperOptions.subcommand:
            let options: KeeperOptions
            do { options = try KeeperOptions(parsing: arguments) } catch {
                printError("\(error)\n\(usage)")
                return 64
            }
            return TerminalKeeper.run(options, environment: Environment.all())
        case "--version", "version":
            let versions = ProtocolConstants.versions
            print(
                "qxub-agent \(QxubVersion.current) (protocol \(versions.lowerBound)-\(versions.upperBound), \(Environment.platform()))"
            )
        case "--help", "-h", "help":
            print(usage)
        default:
            printError("qxub-agent: unknown command \(arguments.first.map { "'\($0)'" } ?? "(none)")\n\(usage)")
            return 64
        }
        return 0
    }

    static func printError(_ text: String) {
        try? FileDescriptor.writeAll(2, text + "\n")
    }
}
