#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Room left on the filesystem that holds a path (statvfs), for refusing work that would not fit.
package enum FreeSpace {
    /// Bytes an unprivileged user may still write on the filesystem of `path`, or of its nearest existing
    /// ancestor (a state root that is not created yet lives where it will be created); nil when statvfs fails.
    package static func availableBytes(_ path: String) -> UInt64? {
        var candidate = path.isEmpty ? "/" : path
        while true {
            var info = statvfs()
            if statvfs(candidate, &info) == 0 {
                return UInt64(info.f_bavail) &* UInt64(info.f_frsize == 0 ? info.f_bsize : info.f_frsize)
            }
            guard errno == ENOENT || errno == ENOTDIR, candidate != "/" else { return nil }
            let parent = FileSystem.directoryName(candidate)
            candidate = parent == candidate ? "/" : parent
        }
    }

    /// `bytes` for people, in binary units named as PBS names them (`gb` = 2^30 bytes): "512 KB", "63 MB", "9.1 GB".
    package static func describe(_ bytes: UInt64) -> String {
        let mb = bytes >> 20
        if mb >= 10 << 10 { return "\(bytes >> 30) GB" }
        if mb >= 1 << 10 {
            let tenths = (bytes * 10 + (1 << 29)) >> 30  // to the nearest tenth
            return "\(tenths / 10).\(tenths % 10) GB"
        }
        if mb >= 1 { return "\(mb) MB" }
        return "\(bytes >> 10) KB"
    }
}
