import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// Held by the one qxub that opens a platform's ssh master; the other qxub that find no master wait for it
/// and then use its master, instead of each opening one (every extra one is an ssh connection with no time
/// limit, and on an MFA cluster one more prompt).
///
/// An advisory `flock` on a file next to the socket, in the private control directory: the kernel drops it
/// when its holder exits, however it exits. The file holds the holder's pid, for the waiters' message.
struct MasterLock {
    private let fd: Int32

    private init(fd: Int32) {
        self.fd = fd
    }

    /// Takes the lock at `path`, waiting as long as its holder keeps it (its ssh may show an MFA prompt).
    /// - Parameter waiting: called once, before waiting, with the holder's pid when it is known.
    static func acquire(_ path: String, waiting: (pid_t?) -> Void) throws(ClientError) -> MasterLock {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw failure(SystemError("open", path)) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let error = SystemError("flock", path)
            guard error.errno == EWOULDBLOCK else {
                FileDescriptor.close(fd)
                throw failure(error)
            }
            waiting(holder(fd))
            while flock(fd, LOCK_EX) != 0 {
                let error = SystemError("flock", path)
                guard error.errno == EINTR else {
                    FileDescriptor.close(fd)
                    throw failure(error)
                }
            }
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        return MasterLock(fd: fd)
    }

    /// Lets the next waiter go (it finds the master open).
    func release() {
        _ = ftruncate(fd, 0)
        FileDescriptor.close(fd)
    }

    private static func holder(_ fd: Int32) -> pid_t? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        return pid_t(
            String(
                decoding: buffer[0..<count].prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") },
                as: UTF8.self
            )
        )
    }

    private static func failure(_ error: SystemError) -> ClientError {
        ClientError(
            "cannot lock the ssh control directory: \(error)",
            hint: "set QXUB_CONTROL_DIR to a private directory",
            exitCode: ExitCodes.unavailable
        )
    }
}
