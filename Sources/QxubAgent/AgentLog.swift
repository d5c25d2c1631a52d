import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// The agent's log: `<state root>/agent.log` (rotated at 1 MiB), mirrored on stderr (which reaches the
/// user's terminal through ssh) when the client asked for `-v` or `QXUB_AGENT_DEBUG` is set.
///
/// One instance per agent, handed to what logs: two sessions in one process (the tests) keep two logs.
package final class AgentLog {
    /// Nil writes nowhere but stderr (when mirrored).
    package var path: String?
    package var mirrorToStderr: Bool

    package init(path: String?, mirrorToStderr: Bool = false) {
        self.path = path
        self.mirrorToStderr = mirrorToStderr
    }

    /// A plain string, not an autoclosure: the optimizer copied `write` for every closure (11 KB of the
    /// static agent), and the log almost always has a path, so the text is made anyway.
    package func write(_ text: String) {
        if mirrorToStderr { try? FileDescriptor.writeAll(2, "qxub-agent: " + text + "\n") }
        guard let path else { return }
        if let size = FileSystem.size(path), size > 1 << 20 { rename(path, path + ".1") }
        var fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        if fd < 0 && errno == ENOENT {
            // The default state root is made by the first job; a session whose jobs go to a platform's
            // state_root may never make it, and its log must not be lost.
            try? FileSystem.createDirectories(FileSystem.directoryName(path))
            fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        }
        guard fd >= 0 else { return }
        defer { FileDescriptor.close(fd) }
        try? FileDescriptor.writeAll(fd, "\(LocalTime.logStamp()) [\(getpid())] \(text)\n")
    }
}
