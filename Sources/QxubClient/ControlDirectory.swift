import QxubSystem

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The private directory that holds qxub's ssh control sockets, and the checks that keep another local user
/// from putting their own socket (their own "master") in front of our sessions.
///
/// qxub creates the directory itself (`mkdir` 0700). One that already exists is opened without following a
/// symbolic link and checked through the open descriptor (`fstat`): ours, and writable by nobody else. After
/// a master starts, ``verify(socket:)`` checks again that the directory is the same one and that the process
/// listening on the socket is ours, before anything is sent through it.
package struct ControlDirectory: Sendable, Equatable {
    package let path: String
    let device: UInt64
    let inode: UInt64

    /// Unix socket paths hold at most 103 bytes on macOS (104 with the NUL; 108 on Linux), and ssh binds
    /// `PATH.` plus 16 random characters before renaming the socket into place.
    package static let socketPathLimit = 103
    package static let sshBindSuffix = 17
    /// Platform names longer than this get a shortened socket name (``socketName(platform:)``).
    package static let socketNameLimit = 24
    /// The longest directory that leaves room for any socket name and ssh's suffix.
    package static let directoryLimit = socketPathLimit - sshBindSuffix - socketNameLimit - 1

    /// Where the directory is, as data: chosen from the environment by ``choose(environment:hostName:userID:)``.
    package enum Location: Equatable, Sendable {
        /// `$QXUB_CONTROL_DIR`, the user's choice.
        case explicit(String)
        /// `$XDG_RUNTIME_DIR/qxub` (`/run/user/UID/qxub`): per user, made by the system, gone at logout.
        case runtime(String)
        /// `~/.local/state/qxub/HOST` (`$XDG_STATE_HOME/qxub/HOST`): per user; HOST because one home is often
        /// shared by several machines (cluster login nodes), each with its own masters.
        case state(String)
        /// The state path is too long for a socket: a directory with an unpredictable name under /tmp
        /// (`mkdtemp`), whose name is remembered in the file `pointer`, inside the private state directory.
        case shortTemporary(pointer: String, userID: uid_t)
    }

    /// The location for this environment. `environment` looks a variable up (empty counts as unset);
    /// `isOwnRuntimeDirectory` says whether `XDG_RUNTIME_DIR` is a directory of ours that nobody else writes.
    package static func choose(
        environment: (String) -> String?,
        hostName: String,
        userID: uid_t,
        isOwnRuntimeDirectory: (String) -> Bool
    ) -> Location {
        func variable(_ name: String) -> String? { environment(name).flatMap { $0.isEmpty ? nil : $0 } }
        if let explicit = variable("QXUB_CONTROL_DIR") { return .explicit(explicit) }
        if let runtime = variable("XDG_RUNTIME_DIR"), isOwnRuntimeDirectory(runtime),
            runtime.utf8.count + "/qxub".utf8.count <= directoryLimit
        {
            return .runtime(runtime + "/qxub")
        }
        let base = variable("XDG_STATE_HOME") ?? (variable("HOME") ?? "/") + "/.local/state"
        // The short host name (gadi-login-03 of gadi-login-03.gadi.nci.org.au), made safe as a file name.
        let short = hostName.split(separator: ".").first.map(String.init) ?? "localhost"
        let host = String(short.prefix(32).map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" })
        let state = base + "/qxub/" + (host.isEmpty ? "localhost" : host)
        if state.utf8.count <= directoryLimit { return .state(state) }
        return .shortTemporary(pointer: state + "/control-dir", userID: userID)
    }

    /// The location for this process.
    package static func current() -> Location {
        choose(environment: Environment.get, hostName: Environment.hostname(), userID: getuid()) { runtime in
            var info = stat()
            return stat(runtime, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR && info.st_uid == getuid()
                && info.st_mode & 0o022 == 0
        }
    }

    /// The socket's file name for a platform: letters, digits, `-` and `_` kept, others `_`; a name longer
    /// than ``socketNameLimit`` is cut and given a hash of the whole name, so two long names stay apart.
    package static func socketName(platform: String) -> String {
        let safe = String(platform.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" })
        guard safe.utf8.count > socketNameLimit else { return safe }
        var hash: UInt32 = 2_166_136_261  // FNV-1a
        for byte in platform.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        let hex = String(hash, radix: 16)
        return String(safe.utf8.prefix(socketNameLimit - 9))! + "-" + String(repeating: "0", count: 8 - hex.count) + hex
    }

    /// Creates or checks the directory of `location`.
    package static func make(_ location: Location) throws(ClientError) -> ControlDirectory {
        switch location {
        case .explicit(let path):
            guard path.utf8.count <= directoryLimit else {
                throw ClientError(
                    "QXUB_CONTROL_DIR is \(path.utf8.count) bytes long: ssh control sockets in it would not fit the "
                        + "\(socketPathLimit + 1)-byte limit of Unix socket paths",
                    hint: "choose a directory of at most \(directoryLimit) characters, or unset QXUB_CONTROL_DIR",
                    exitCode: ExitCodes.usage
                )
            }
            return try checked(path)
        case .runtime(let path), .state(let path):
            return try checked(path)
        case .shortTemporary(let pointer, let userID):
            _ = try checked(FileSystem.directoryName(pointer))
            if let remembered = FileSystem.readText(pointer)?.split(separator: "\n").first.map(String.init),
                remembered.hasPrefix("/tmp/qxub-\(userID)-"),
                let directory = try? checked(remembered, create: false)
            {
                return directory
            }
            // None yet, or /tmp was cleaned, or its name is taken by someone else: a new one.
            var template = Array("/tmp/qxub-\(userID)-XXXXXX".utf8CString)
            guard let made = mkdtemp(&template) else {
                throw failure(SystemError("mkdtemp", "/tmp/qxub-\(userID)-XXXXXX"))
            }
            let path = String(cString: made)
            do {
                try FileSystem.writeAtomically(pointer, path + "\n")
            } catch {
                throw ClientError(
                    "cannot remember the ssh control directory in \(pointer): \(error)",
                    hint: "set QXUB_CONTROL_DIR to a private directory",
                    exitCode: ExitCodes.unavailable
                )
            }
            return try checked(path, create: false)
        }
    }

    /// Creates `path` (mode 0700, its parents too) or checks the one that is there.
    static func checked(_ path: String, create: Bool = true) throws(ClientError) -> ControlDirectory {
        if create {
            do {
                try FileSystem.createDirectories(FileSystem.directoryName(path), mode: 0o700)
            } catch {
                throw failure(error)
            }
            if mkdir(path, 0o700) != 0 && currentErrno() != EEXIST { throw failure(SystemError("mkdir", path)) }
        }
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            let error = SystemError("open", path)
            var info = stat()
            guard lstat(path, &info) == 0 else { throw failure(error) }
            if (info.st_mode & S_IFMT) == S_IFLNK {
                throw refusal(
                    path,
                    "is a symbolic link (to \(FileSystem.readLink(path) ?? "?")): another user may be "
                        + "trying to take over your ssh sessions"
                )
            }
            if info.st_uid != getuid() { throw foreign(path, info.st_uid) }
            if (info.st_mode & S_IFMT) != S_IFDIR { throw refusal(path, "is not a directory") }
            throw failure(error)
        }
        defer { FileDescriptor.close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw failure(SystemError("fstat", path)) }
        if info.st_uid != getuid() { throw foreign(path, info.st_uid) }
        if info.st_mode & 0o022 != 0 {
            // Others could have put a socket of theirs in it: it cannot be trusted, whatever its mode now.
            throw refusal(
                path,
                "can be written by other users (mode \(String(info.st_mode & 0o777, radix: 8))): a "
                    + "socket in it may be someone else's"
            )
        }
        if info.st_mode & 0o777 != 0o700 {
            // Readable or searchable by others only (a mkdir under umask 022): nobody could add anything, so
            // closing it is safe, and what a user who made it this way wants.
            guard fchmod(fd, 0o700) == 0 else { throw failure(SystemError("chmod", path)) }
            ClientLog.write("ssh control directory \(path): mode \(String(info.st_mode & 0o777, radix: 8)) set to 700")
        }
        return ControlDirectory(path: path, device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }

    /// Checks, after a master started or before using one found running, that the directory is still the one
    /// ``make(_:)`` checked (not swapped for another one or a link) and that the process listening on `socket`
    /// is ours. Nothing may go through the socket otherwise.
    package func verify(socket: String) throws(ClientError) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        var info = stat()
        let same =
            fd >= 0 && fstat(fd, &info) == 0 && UInt64(info.st_dev) == device && UInt64(info.st_ino) == inode
            && info.st_uid == getuid() && info.st_mode & 0o077 == 0
        if fd >= 0 { FileDescriptor.close(fd) }
        guard same else {
            let now = FileSystem.readLink(path).map { "now a symbolic link to \($0)" } ?? "now another directory"
            throw Self.refusal(
                path,
                "changed while the ssh master started (\(now)): another user may be trying to "
                    + "take over your ssh sessions; nothing was sent"
            )
        }
        if let listener = Self.listener(socket), listener.userID != getuid() {
            throw Self.refusal(
                path,
                "holds a socket \(socket) served by \(Self.userName(listener.userID)) "
                    + "(pid \(listener.pid)), not by you: nothing was sent"
            )
        }
    }

    /// The process listening on the Unix socket at `path` (nil when nothing listens): a connect, no ssh.
    package static func listener(_ path: String) -> (pid: pid_t, userID: uid_t)? {
        guard case .success(let fd) = UnixSocket.connect(path) else { return nil }
        defer { FileDescriptor.close(fd) }
        // The listener's credentials as of its listen(): who made the socket, even if it is stopped now.
        return PeerCredentials.of(fd).map { ($0.pid, $0.userID) }
    }

    static func userName(_ userID: uid_t) -> String {
        guard let entry = getpwuid(userID), let name = entry.pointee.pw_name else { return "uid \(userID)" }
        return "user \(String(cString: name)) (uid \(userID))"
    }

    static func refusal(_ path: String, _ problem: String) -> ClientError {
        ClientError(
            "the ssh control directory \(path) \(problem)",
            hint: "if you did not make it so, tell your administrators; remove it (`rm -r \(path)`) and run qxub "
                + "again, or "
                + "set QXUB_CONTROL_DIR to a private directory",
            exitCode: ExitCodes.unavailable
        )
    }

    static func foreign(_ path: String, _ owner: uid_t) -> ClientError {
        refusal(
            path,
            "belongs to \(userName(owner)), not to you: another user may be trying to take over your "
                + "ssh sessions"
        )
    }

    static func failure(_ error: any Error) -> ClientError {
        ClientError(
            "cannot create the ssh control directory: \(error)",
            hint: "set QXUB_CONTROL_DIR to a private directory",
            exitCode: ExitCodes.unavailable
        )
    }
}
