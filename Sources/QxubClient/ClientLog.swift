import QxubSystem
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The client's log: `~/.local/state/qxub/qxub.log` (rotated at 1 MiB), mirrored on stderr with `-v`.
package enum ClientLog {
    private static let verbosity = Atomic<Int>(0)

    /// 0: file only; 1 and up: also stderr (and the agent's messages, see `AgentConnection.hello`).
    package static var level: Int {
        get { verbosity.load(ordering: .relaxed) }
        set { verbosity.store(newValue, ordering: .relaxed) }
    }

    package static var path: String {
        let base =
            Environment.get("XDG_STATE_HOME").flatMap { $0.isEmpty ? nil : $0 } ?? (Environment.get("HOME") ?? "/tmp")
            + "/.local/state"
        return base + "/qxub/qxub.log"
    }

    package static func write(_ message: @autoclosure () -> String) {
        let text = message()
        if level > 0 { try? FileDescriptor.writeAll(2, "qxub: [log] " + text + "\n") }
        let file = path
        try? FileSystem.createDirectories(FileSystem.directoryName(file), mode: 0o700)
        if let size = FileSystem.size(file), size > 1 << 20 { rename(file, file + ".1") }
        let fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        defer { FileDescriptor.close(fd) }
        try? FileDescriptor.writeAll(fd, "\(LocalTime.logStamp()) [\(getpid())] \(text)\n")
    }
}
