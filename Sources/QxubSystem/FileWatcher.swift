#if canImport(Glibc)
import Glibc

/// Wakes an ``EventLoop`` when files change in watched directories (inotify). A hint only: on network
/// filesystems writes from other hosts raise no events, so callers keep polling as well.
package final class FileWatcher {
    private let fd: Int32
    private var watched: [String: Int32] = [:]

    /// Nil when inotify is unavailable (callers then rely on polling alone).
    package init?(loop: EventLoop, onChange: @escaping () -> Void) {
        fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else { return nil }
        let fd = self.fd
        loop.setReadable(fd) {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while (try? buffer.withUnsafeMutableBytes { try FileDescriptor.read(fd, into: $0) }).map({
                if case .bytes = $0 { true } else { false }
            }) == true {}
            onChange()
        }
    }

    /// Watches `directory` for writes, new files and renames into it.
    package func watch(_ directory: String) {
        guard watched[directory] == nil else { return }
        let mask = UInt32(IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_MOVED_TO)
        let descriptor = inotify_add_watch(fd, directory, mask)
        if descriptor >= 0 { watched[directory] = descriptor }
    }

    package func unwatch(_ directory: String) {
        if let descriptor = watched.removeValue(forKey: directory) { inotify_rm_watch(fd, descriptor) }
    }
}
#endif
