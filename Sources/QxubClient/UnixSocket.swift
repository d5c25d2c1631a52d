import QxubSystem

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Stream sockets at a path in the file system: the session holder listens on one in the private control
/// directory; nothing of qxub listens on a network port.
package enum UnixSocket {
    /// Why a connect failed, as far as the caller acts on it.
    package enum ConnectFailure: Error, Equatable {
        /// No socket file there.
        case absent
        /// A socket file nobody listens on (its holder died).
        case refused
        /// Anything else (the path too long, no descriptors left).
        case failed(Int32)
    }

    /// A connected descriptor (blocking, close-on-exec).
    package static func connect(_ path: String) -> Result<Int32, ConnectFailure> {
        let fd = makeSocket()
        guard fd >= 0 else { return .failure(.failed(currentErrno())) }
        let result = withAddress(path) { address, length in
            #if canImport(Glibc)
            Glibc.connect(fd, address, length)
            #else
            Darwin.connect(fd, address, length)
            #endif
        }
        guard result == 0 else {
            let code = result == nil ? ENAMETOOLONG : currentErrno()
            FileDescriptor.close(fd)
            switch code {
            case ENOENT: return .failure(.absent)
            case ECONNREFUSED: return .failure(.refused)
            default: return .failure(.failed(code))
            }
        }
        return .success(fd)
    }

    /// A listening descriptor bound at `path` (which must not exist), non-blocking.
    package static func listen(_ path: String) throws(SystemError) -> Int32 {
        let fd = makeSocket()
        guard fd >= 0 else { throw SystemError("socket", path) }
        let bound = withAddress(path) { address, length in bind(fd, address, length) }
        guard bound == 0 else {
            let error = SystemError("bind", path, errno: bound == nil ? ENAMETOOLONG : currentErrno())
            FileDescriptor.close(fd)
            throw error
        }
        #if canImport(Glibc)
        let listened = Glibc.listen(fd, 64)
        #else
        let listened = Darwin.listen(fd, 64)
        #endif
        guard listened == 0 else {
            let error = SystemError("listen", path)
            FileDescriptor.close(fd)
            throw error
        }
        do { try FileDescriptor.setNonBlocking(fd) } catch {
            FileDescriptor.close(fd)
            throw SystemError("fcntl", path)
        }
        return fd
    }

    /// The next pending connection of a listening descriptor (close-on-exec), nil when none waits.
    package static func accept(_ listener: Int32) -> Int32? {
        #if canImport(Glibc)
        let fd = Glibc.accept(listener, nil, nil)
        #else
        let fd = Darwin.accept(listener, nil, nil)
        #endif
        guard fd >= 0 else { return nil }
        FileDescriptor.setCloseOnExec(fd)
        return fd
    }

    private static func makeSocket() -> Int32 {
        #if canImport(Glibc)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_UNIX, SOCK_STREAM, 0)
        #endif
        if fd >= 0 { FileDescriptor.setCloseOnExec(fd) }
        return fd
    }

    /// Calls `body` with `path` as a socket address; nil when the path does not fit one.
    private static func withAddress(
        _ path: String,
        _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32
    ) -> Int32? {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                body($0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
    }
}
