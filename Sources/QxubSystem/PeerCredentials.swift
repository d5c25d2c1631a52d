#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Who is at the other end of a connected unix socket: the kernel's word (SO_PEERCRED on Linux,
/// LOCAL_PEERPID and getpeereid on macOS), which the peer cannot forge.
package struct PeerCredentials: Sendable, Equatable {
    package var pid: pid_t
    package var userID: uid_t

    package init(pid: pid_t, userID: uid_t) {
        self.pid = pid
        self.userID = userID
    }

    /// The credentials of the peer of `fd` (as of its connect or listen); nil when the kernel does not say.
    package static func of(_ fd: Int32) -> PeerCredentials? {
        #if canImport(Glibc)
        // struct ucred (pid, uid, gid): Glibc exports it only with _GNU_SOURCE.
        var credentials: (pid_t, uid_t, gid_t) = (0, 0, 0)
        var length = socklen_t(MemoryLayout<(pid_t, uid_t, gid_t)>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0 else { return nil }
        return PeerCredentials(pid: credentials.0, userID: credentials.1)
        #else
        var pid: pid_t = 0
        var length = socklen_t(MemoryLayout<pid_t>.size)
        var userID: uid_t = 0
        var groupID: gid_t = 0
        guard getsockopt(fd, SOL_LOCAL, LOCAL_PEERPID, &pid, &length) == 0, getpeereid(fd, &userID, &groupID) == 0
        else { return nil }
        return PeerCredentials(pid: pid, userID: userID)
        #endif
    }

    /// Only the user's own processes may use a session holder or a terminal keeper: anything else (another
    /// user, or a peer the kernel says nothing about) is refused before a byte is read.
    package static func admits(_ peer: PeerCredentials?, ownUserID: uid_t) -> Bool {
        peer?.userID == ownUserID
    }
}
