import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// Finds the agent binary for local sessions.
package enum AgentLocator {
    /// `explicit` (`QXUB_AGENT`, see ``ClientSettings``), else `<prefix>/libexec/qxub/qxub-agent` beside the
    /// installed `qxub`, else a `qxub-agent` in the same directory (a build folder).
    package static func localAgent(explicit: String?) throws(ClientError) -> String {
        if let explicit, !explicit.isEmpty {
            guard access(explicit, X_OK) == 0 else {
                throw ClientError(
                    "QXUB_AGENT is \(explicit), which is not an executable file",
                    hint: "unset it or point it at qxub-agent",
                    exitCode: ExitCodes.unavailable
                )
            }
            return explicit
        }
        let directory = FileSystem.directoryName(executablePath())
        let candidates = [
            directory + "/../libexec/qxub/qxub-agent",
            directory + "/qxub-agent",
        ]
        for candidate in candidates where access(candidate, X_OK) == 0 { return candidate }
        throw ClientError(
            "cannot find qxub-agent (looked in \(candidates.joined(separator: ", ")))",
            hint: "reinstall with install/install.sh, or set QXUB_AGENT to its path",
            exitCode: ExitCodes.unavailable
        )
    }

    /// This process's executable.
    package static func executablePath() -> String {
        FileSystem.readLink("/proc/self/exe") ?? CommandLine.arguments[0]
    }
}
