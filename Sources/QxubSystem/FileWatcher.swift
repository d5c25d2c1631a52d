#if canImport(Glibc)
import Glibc

/// Tells an ``EventLoop`` which watched directories changed (inotify), so that a change wakes only the jobs
/// that live there. A hint only on network filesystems (writes from other hosts raise no events):
/// ``eventsAreComplete(_:)`` says where callers must keep polling.
package final class FileWatcher {
    /// What changed: the watched directories that had events, or nil when the kernel's queue overflowed (any
    /// directory may have changed).
    package typealias Changes = Set<String>?

    private let fd: Int32
    /// Each watched directory's watch descriptor and how many callers asked for it.
    private var watched: [String: (descriptor: Int32, users: Int)] = [:]
    private var directoryOf: [Int32: String] = [:]

    /// Nil when inotify is unavailable (callers then rely on polling alone).
    package init?(loop: EventLoop, onChange: @escaping (Changes) -> Void) {
        fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else { return nil }
        loop.setReadable(fd) { [weak self] in
            guard let self else { return }
            onChange(self.readEvents())
        }
    }

    /// Watches `directory` for writes, new files and renames into it (one kernel watch however many callers
    /// ask); returns whether its events will come. Each successful call needs one ``unwatch(_:)``.
    @discardableResult
    package func watch(_ directory: String) -> Bool {
        if let entry = watched[directory] {
            watched[directory] = (entry.descriptor, entry.users + 1)
            return true
        }
        let mask = UInt32(IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_MOVED_TO)
        let descriptor = inotify_add_watch(fd, directory, mask)
        guard descriptor >= 0 else { return false }
        watched[directory] = (descriptor, 1)
        directoryOf[descriptor] = directory
        return true
    }

    /// Drops one caller's interest in `directory`; the kernel watch goes with the last one.
    package func unwatch(_ directory: String) {
        guard let entry = watched[directory] else { return }
        if entry.users > 1 {
            watched[directory] = (entry.descriptor, entry.users - 1)
            return
        }
        watched[directory] = nil
        directoryOf[entry.descriptor] = nil
        inotify_rm_watch(fd, entry.descriptor)
    }

    /// Whether `directory` is watched now (a watch ends by itself when its directory is removed).
    package func isWatching(_ directory: String) -> Bool { watched[directory] != nil }

    /// Reads every queued event; the directories they name (a removed directory's watch is forgotten).
    private func readEvents() -> Changes {
        var changed: Set<String> = []
        var overflow = false
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        let headerSize = MemoryLayout<inotify_event>.size
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            var offset = 0
            while offset + headerSize <= count {
                let (descriptor, mask, nameLength) = buffer.withUnsafeBytes { bytes in
                    let event = bytes.loadUnaligned(fromByteOffset: offset, as: inotify_event.self)
                    return (event.wd, event.mask, Int(event.len))
                }
                offset += headerSize + nameLength
                if mask & UInt32(IN_Q_OVERFLOW) != 0 { overflow = true }
                guard let directory = directoryOf[descriptor] else { continue }
                changed.insert(directory)
                if mask & UInt32(IN_IGNORED) != 0 {
                    // The directory is gone (or unmounted): no more events will come for it.
                    watched[directory] = nil
                    directoryOf[descriptor] = nil
                }
            }
        }
        return overflow ? nil : changed
    }

    /// Whether inotify sees every write in `directory`: only on filesystems local to this host. On NFS,
    /// Lustre, GPFS and other network or FUSE filesystems, writes made by other hosts raise no events.
    package static func eventsAreComplete(_ directory: String) -> Bool {
        // `struct statfs` is not in the Glibc module; its first field is `f_type` (a long on 64-bit Linux).
        var info = [Int](repeating: 0, count: 64)
        guard info.withUnsafeMutableBytes({ systemStatfs(directory, $0.baseAddress!) }) == 0 else { return false }
        return localFilesystems.contains(UInt64(truncatingIfNeeded: info[0]))
    }

    /// `f_type` of filesystems whose every write happens on this host: ext2/3/4, XFS, Btrfs, tmpfs, ramfs,
    /// overlayfs, ZFS, F2FS.
    private static let localFilesystems: Set<UInt64> = [
        0xEF53, 0x5846_5342, 0x9123_683E, 0x0102_1994, 0x8584_58F6, 0x794C_7630, 0x2FC1_2FC1, 0xF2F5_2010,
    ]
}
@_silgen_name("statfs")
private func systemStatfs(_ path: UnsafePointer<CChar>, _ buffer: UnsafeMutableRawPointer) -> Int32
#endif
