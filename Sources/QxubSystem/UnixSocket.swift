#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Stream sockets at a path in the file system: the session holder listens on one in the private control
/// directory, an interactive job's keeper in the job's directory; nothing of qxub listens on a network port.
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

    /// A listening socket at a path of the private control directory, served by one process at a time (the
    /// caller holds the lock that makes it so). Closing removes the socket file only while it is still the one
    /// this listener bound: a newer server's file is left alone.
    package struct BoundListener {
        package let fd: Int32
        package let path: String
        private let inode: UInt64?

        /// Binds at `path`, replacing a socket file left there by a server that died (nobody answers it).
        package static func bind(_ path: String) throws(SystemError) -> BoundListener {
            if FileSystem.exists(path) { unlink(path) }
            let fd = try UnixSocket.listen(path)
            var info = stat()
            return BoundListener(fd: fd, path: path, inode: stat(path, &info) == 0 ? UInt64(info.st_ino) : nil)
        }

        /// Closes the descriptor (the caller stops watching it first) and removes the file if it is ours.
        package func close() {
            FileDescriptor.close(fd)
            var info = stat()
            if let inode, stat(path, &info) == 0, UInt64(info.st_ino) == inode { unlink(path) }
        }
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

    /// Sends all of `bytes` on a connected socket, with `descriptors` attached to the first part
    /// (`SCM_RIGHTS`: the peer receives its own copies of them).
    package static func send(_ fd: Int32, _ bytes: [UInt8], descriptors: [Int32]) throws(SystemError) {
        var sent = 0
        if !descriptors.isEmpty {
            var control = [UInt8](repeating: 0, count: controlSpace(descriptors: descriptors.count))
            var header = cmsghdr()
            header.cmsg_len = controlLength(descriptors: descriptors.count)
            header.cmsg_level = SOL_SOCKET
            header.cmsg_type = Int32(SCM_RIGHTS)
            withUnsafeBytes(of: header) { raw in control.replaceSubrange(0..<raw.count, with: raw) }
            descriptors.withUnsafeBytes { raw in
                control.replaceSubrange(controlHeaderSize..<(controlHeaderSize + raw.count), with: raw)
            }
            var result = -1
            repeat {
                result = bytes.withUnsafeBytes { data in
                    withMessage(UnsafeMutableRawBufferPointer(mutating: data), control: &control) { message in
                        sendmsg(fd, &message, Int32(MSG_NOSIGNAL))
                    }
                }
            } while result < 0 && currentErrno() == EINTR
            guard result >= 0 else { throw SystemError("sendmsg", "unix socket") }
            sent = result
        }
        if sent < bytes.count {
            do { try FileDescriptor.writeAll(fd, Array(bytes[sent...])) } catch {
                throw (error as? SystemError) ?? SystemError("write", "unix socket")
            }
        }
    }

    /// Reads what the socket has (up to the buffer's size), with descriptors sent along (close-on-exec here).
    /// Returns 0 bytes at the end of the stream; nil when a non-blocking socket has nothing yet.
    package static func receive(
        _ fd: Int32,
        into buffer: UnsafeMutableRawBufferPointer,
        maxDescriptors: Int = 4
    ) throws(SystemError) -> (count: Int, descriptors: [Int32])? {
        var control = [UInt8](repeating: 0, count: controlSpace(descriptors: maxDescriptors))
        var received = -1
        var controlUsed = 0
        repeat {
            received = withMessage(buffer, control: &control) { message in
                let result = recvmsg(fd, &message, Int32(MSG_CMSG_CLOEXEC))
                controlUsed = Int(message.msg_controllen)
                return result
            }
        } while received < 0 && currentErrno() == EINTR
        if received < 0 {
            if currentErrno() == EAGAIN || currentErrno() == EWOULDBLOCK { return nil }
            throw SystemError("recvmsg", "unix socket")
        }
        var descriptors: [Int32] = []
        if controlUsed >= controlHeaderSize {
            let header = control.withUnsafeBytes { $0.loadUnaligned(as: cmsghdr.self) }
            if header.cmsg_level == SOL_SOCKET && header.cmsg_type == Int32(SCM_RIGHTS) {
                let count = (Int(header.cmsg_len) - controlHeaderSize) / MemoryLayout<Int32>.size
                control.withUnsafeBytes { raw in
                    for index in 0..<count {
                        descriptors.append(
                            raw.loadUnaligned(fromByteOffset: controlHeaderSize + index * 4, as: Int32.self)
                        )
                    }
                }
            }
        }
        return (received, descriptors)
    }

    /// Calls `body` with a message header of one data buffer and a control buffer (sendmsg and recvmsg alike).
    private static func withMessage(
        _ data: UnsafeMutableRawBufferPointer,
        control: inout [UInt8],
        _ body: (inout msghdr) -> Int
    ) -> Int {
        control.withUnsafeMutableBytes { controlBytes in
            var vector = iovec(iov_base: data.baseAddress, iov_len: data.count)
            return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                var message = msghdr()
                message.msg_iov = vectorPointer
                message.msg_iovlen = 1
                message.msg_control = controlBytes.baseAddress
                message.msg_controllen = controlBytes.count
                return body(&message)
            }
        }
    }

    /// `CMSG_ALIGN(sizeof(struct cmsghdr))`: where a control message's data begins.
    private static var controlHeaderSize: Int { align(MemoryLayout<cmsghdr>.size) }

    /// `CMSG_LEN(n)` for `descriptors` descriptors.
    private static func controlLength(descriptors: Int) -> Int {
        controlHeaderSize + descriptors * MemoryLayout<Int32>.size
    }

    /// `CMSG_SPACE(n)` for `descriptors` descriptors.
    private static func controlSpace(descriptors: Int) -> Int {
        controlHeaderSize + align(descriptors * MemoryLayout<Int32>.size)
    }

    private static func align(_ size: Int) -> Int {
        let unit = MemoryLayout<Int>.size
        return (size + unit - 1) / unit * unit
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
    ///
    /// A path longer than `sun_path` (108 bytes on Linux: a deep state directory) is reached through a
    /// descriptor of its directory, as `/proc/self/fd/N/NAME`; bind and connect both resolve it there.
    private static func withAddress(
        _ path: String,
        _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32
    ) -> Int32? {
        if let result = withShortAddress(path, body) { return result }
        #if canImport(Glibc)
        guard let slash = path.lastIndex(of: "/") else { return nil }
        let directory = open(
            slash == path.startIndex ? "/" : String(path[..<slash]),
            O_RDONLY | O_DIRECTORY | O_CLOEXEC
        )
        guard directory >= 0 else { return -1 }
        let result = withShortAddress("/proc/self/fd/\(directory)/" + path[path.index(after: slash)...], body)
        let error = currentErrno()  // the caller reads why bind or connect failed
        FileDescriptor.close(directory)
        errno = error
        return result
        #else
        return nil
        #endif
    }

    private static func withShortAddress(
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
