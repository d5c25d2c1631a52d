import QxubSystem

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Starts a platform's session holder in the background: `qxub session serve --platform NAME`, in a session
/// of its own (no terminal, so its ssh can never prompt; the terminal's Ctrl-C never reaches it), stdin and
/// stdout on /dev/null, stderr in `~/.local/state/qxub/holder-NAME.log`.
package enum SessionHolderLauncher {
    /// The holder's log for a platform.
    package static func logPath(platform: String) -> String? {
        guard let sshLog = try? SSHLauncher.logPath() else { return nil }
        return FileSystem.directoryName(sshLog) + "/holder-" + ControlDirectory.socketName(platform: platform) + ".log"
    }

    /// Spawns the holder and does not wait for it. Two qxub that both start one are harmless: the second
    /// holder finds the first one's lock and exits.
    /// - Parameter configFile: the `--config` file the platform was read with, passed on (absolute: the
    ///   holder outlives the command that gave it).
    package static func start(platform: String, configFile: String? = nil) {
        let log = logPath(platform: platform)
        let fd = log.map { open($0, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600) } ?? -1
        defer { if fd >= 0 { FileDescriptor.close(fd) } }
        let config = configFile.map { $0.hasPrefix("/") ? $0 : FileSystem.currentDirectory() + "/" + $0 }
        do {
            let child = try ChildProcess.spawn(
                [AgentLocator.executablePath(), "session", "serve", "--platform", platform]
                    + (config.map { ["--config", $0] } ?? []),
                stdin: .null,
                stdout: .null,
                stderr: fd >= 0 ? .fileDescriptor(fd) : .null,
                newSession: true
            )
            ClientLog.write("session holder for \(platform) started (pid \(child.pid))")
        } catch {
            ClientLog.write("session holder for \(platform): cannot start: \(error)")
        }
    }
}
