#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// File operations the agent and client need, without Foundation.
package enum FileSystem {
    package static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    package static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// The size of a file, or nil when it does not exist.
    package static func size(_ path: String) -> UInt64? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return UInt64(info.st_size)
    }

    /// `mkdir -p` with `mode` for the directories it creates.
    package static func createDirectories(_ path: String, mode: mode_t = 0o700) throws {
        if isDirectory(path) { return }
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += component
            if mkdir(prefix, mode) != 0 && currentErrno() != EEXIST {
                throw SystemError("mkdir", prefix)
            }
            prefix += "/"
        }
        guard isDirectory(path) else { throw SystemError("mkdir", path, errno: ENOTDIR) }
    }

    /// Writes `bytes` to a temporary file beside `path`, then renames it into place: readers see the old
    /// file or the new one, never a half-written one (also on NFS and Lustre).
    package static func writeAtomically(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o600) throws {
        let temporary = path + ".tmp.\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw SystemError("open", temporary) }
        do {
            try FileDescriptor.writeAll(fd, bytes)
        } catch {
            FileDescriptor.close(fd)
            unlink(temporary)
            throw error
        }
        fchmod(fd, mode)  // explicit: the umask (often 027 on clusters) must not decide
        FileDescriptor.close(fd)
        guard rename(temporary, path) == 0 else {
            let error = SystemError("rename", path)
            unlink(temporary)
            throw error
        }
    }

    package static func writeAtomically(_ path: String, _ text: String, mode: mode_t = 0o600) throws {
        try writeAtomically(path, Array(text.utf8), mode: mode)
    }

    /// Writes `text` to a new file at `path` unless one is there already (returns false then), so that
    /// readers never see half of it: written beside it, then linked into place (`link` fails on an existing
    /// name, where `rename` would replace it). Where the filesystem has no hard links, renamed into place
    /// when the name is still free.
    package static func createAtomically(_ path: String, _ text: String, mode: mode_t = 0o600) throws -> Bool {
        if exists(path) { return false }
        let temporary = path + ".new.\(getpid())"
        try writeAtomically(temporary, text, mode: mode)
        defer { unlink(temporary) }
        if link(temporary, path) == 0 { return true }
        let error = currentErrno()
        if error == EEXIST { return false }
        guard error == EPERM || error == ENOTSUP || error == EOPNOTSUPP else { throw SystemError("link", path) }
        if exists(path) { return false }
        guard rename(temporary, path) == 0 else { throw SystemError("rename", path) }
        return true
    }

    /// The whole file, or nil when it does not exist or cannot be read.
    package static func read(_ path: String, limit: Int = 16 << 20) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { FileDescriptor.close(fd) }
        return try? FileDescriptor.readAll(fd, limit: limit)
    }

    package static func readText(_ path: String) -> String? {
        read(path).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The last `limit` bytes of a file as text (nil when it cannot be opened).
    package static func readTail(_ path: String, limit: Int) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { FileDescriptor.close(fd) }
        let size = FileSystem.size(path) ?? 0
        let start = size > UInt64(limit) ? size - UInt64(limit) : 0
        guard let bytes = try? read(fd: fd, offset: start, count: Int(size - start)) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Reads up to `count` bytes at `offset` (fewer at end of file; empty when nothing new).
    package static func read(fd: Int32, offset: UInt64, count: Int) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        while true {
            let got = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
            if got >= 0 {
                buffer.removeSubrange(got...)
                return buffer
            }
            if currentErrno() != EINTR { throw SystemError("read", "fd \(fd)") }
        }
    }

    /// Points `link` at `target`, replacing an existing link atomically.
    package static func symlink(_ target: String, at link: String) throws {
        let temporary = link + ".tmp.\(getpid())"
        unlink(temporary)
        guard Glibc.symlink(target, temporary) == 0 else { throw SystemError("symlink", link) }
        guard rename(temporary, link) == 0 else {
            unlink(temporary)
            throw SystemError("rename", link)
        }
    }

    /// Where a symbolic link points, or nil.
    package static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink(path, &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The names in a directory (not `.` and `..`), sorted; empty when it cannot be read.
    package static func listDirectory(_ path: String) -> [String] {
        guard let directory = opendir(path) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// The current working directory.
    package static func currentDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buffer, buffer.count) != nil else { return "/" }
        return String(cString: buffer)
    }

    /// The directory part of a path ("." when there is none).
    package static func directoryName(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}
