// qxub-agent: the static binary that runs on the cluster. Thin: all logic lives in QxubAgent.
import QxubAgent
import QxubProtocol
import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

func printError(_ text: String) {
    try? FileDescriptor.writeAll(2, text + "\n")
}

let usage = """
    usage: qxub-agent serve        speak the qxub protocol on stdin/stdout (started by qxub)
           qxub-agent --version    print the version, protocol range and platform
    """

let arguments = Array(CommandLine.arguments.dropFirst())
switch arguments.first {
case "serve":
    exit(AgentServer.serve(log: printError))
case "--version", "version":
    let versions = ProtocolConstants.versions
    print("qxub-agent \(QxubVersion.current) (protocol \(versions.lowerBound)-\(versions.upperBound), \(Environment.platform()))")
case "--help", "-h", "help":
    print(usage)
default:
    printError("qxub-agent: unknown command \(arguments.first.map { "'\($0)'" } ?? "(none)")\n\(usage)")
    exit(64)
}
