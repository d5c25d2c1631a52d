#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Small, honest wrappers over file-descriptor system calls. Retries on `EINTR`; never hides other errors.
package enum FileDescriptor {
    /// What a non-blocking read produced.
    package enum ReadResult: Equatable, Sendable {
        case bytes(Int)
        case endOfFile
        case wouldBlock
    }

    /// Reads what is available into `buffer`.
    package static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws -> ReadResult {
        while true {
            let count = systemRead(fd, buffer.baseAddress, buffer.count)
            if count > 0 { return .bytes(count) }
            if count == 0 { return .endOfFile }
            let error = currentErrno()
            if error == EINTR { continue }
            if error == EAGAIN || error == EWOULDBLOCK { return .wouldBlock }
            throw SystemError("read", "fd \(fd)", errno: error)
        }
    }

    /// Writes as much as the descriptor takes now; returns the count (0 when it would block).
    package static func writeSome(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws -> Int {
        while true {
            let count = systemWrite(fd, bytes.baseAddress, bytes.count)
            if count >= 0 { return count }
            let error = currentErrno()
            if error == EINTR { continue }
            if error == EAGAIN || error == EWOULDBLOCK { return 0 }
            throw SystemError("write", "fd \(fd)", errno: error)
        }
    }

    /// Writes everything, blocking as needed (for blocking descriptors and small messages).
    package static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = try bytes.withUnsafeBytes { raw throws in
                try writeSome(fd, UnsafeRawBufferPointer(rebasing: raw[offset...]))
            }
            if written == 0 {
                var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                _ = poll(&poller, 1, -1)
            }
            offset += written
        }
    }

    package static func writeAll(_ fd: Int32, _ text: String) throws {
        try writeAll(fd, Array(text.utf8))
    }

    package static func setNonBlocking(_ fd: Int32, _ on: Bool = true) throws {
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0 else { throw SystemError("fcntl", "fd \(fd)") }
        let wanted = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK
        if wanted != flags && fcntl(fd, F_SETFL, wanted) < 0 { throw SystemError("fcntl", "fd \(fd)") }
    }

    package static func setCloseOnExec(_ fd: Int32) {
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
    }

    package static func close(_ fd: Int32) {
        _ = systemClose(fd)
    }

    /// A pipe whose ends are close-on-exec: `(read, write)`.
    package static func pipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        guard systemPipe(&fds) == 0 else { throw SystemError("pipe") }
        setCloseOnExec(fds[0])
        setCloseOnExec(fds[1])
        return (fds[0], fds[1])
    }

    /// Reads until end of file (a blocking descriptor), at most `limit` bytes.
    package static func readAll(_ fd: Int32, limit: Int = 64 << 20) throws -> [UInt8] {
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while result.count < limit {
            let outcome = try chunk.withUnsafeMutableBytes { raw throws in try read(fd, into: raw) }
            switch outcome {
            case .bytes(let count): result.append(contentsOf: chunk[0..<count])
            case .endOfFile: return result
            case .wouldBlock:
                var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                _ = poll(&poller, 1, -1)
            }
        }
        return result
    }
}

// The module's own names shadow the C functions; these reach the originals.
@inline(__always) private func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    #if canImport(Glibc)
    Glibc.read(fd, buffer, count)
    #else
    Darwin.read(fd, buffer, count)
    #endif
}
@inline(__always) private func systemWrite(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int {
    #if canImport(Glibc)
    Glibc.write(fd, buffer, count)
    #else
    Darwin.write(fd, buffer, count)
    #endif
}
@inline(__always) private func systemClose(_ fd: Int32) -> Int32 {
    #if canImport(Glibc)
    Glibc.close(fd)
    #else
    Darwin.close(fd)
    #endif
}
@inline(__always) private func systemPipe(_ fds: UnsafeMutablePointer<Int32>) -> Int32 {
    #if canImport(Glibc)
    Glibc.pipe(fds)
    #else
    Darwin.pipe(fds)
    #endif
}
