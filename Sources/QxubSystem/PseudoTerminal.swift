#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A terminal's size in character cells.
package struct WindowSize: Hashable, Sendable {
    package var rows: UInt16
    package var columns: UInt16

    package init(rows: UInt16, columns: UInt16) {
        self.rows = rows
        self.columns = columns
    }
}

/// A pseudo-terminal pair: the master, which we read and write, and the path of its slave, which a child
/// opens as its controlling terminal (``ChildProcess/spawn(_:environment:stdin:stdout:stderr:newSession:newProcessGroup:controllingTerminal:)``).
///
/// Opened as `posix_openpt` does (not `openpty`, which needs libutil), so the static agent links nothing new.
package struct PseudoTerminal: Sendable {
    /// The master's descriptor (close-on-exec, blocking; the caller owns it and closes it).
    package let master: Int32
    /// The slave's path, such as `/dev/pts/3`.
    package let slavePath: String

    /// Opens a new pair. The slave is not opened here: the child opens it after it has begun its session,
    /// so that it becomes the child's controlling terminal (we, holding no slave descriptor, then see EIO on
    /// the master once the last process that has the slave open is gone).
    package static func open() throws(SystemError) -> PseudoTerminal {
        let master = openMaster()
        guard master >= 0 else { throw SystemError("open", "/dev/ptmx") }
        do {
            try unlock(master)
            return PseudoTerminal(master: master, slavePath: try slaveName(master))
        } catch {
            FileDescriptor.close(master)
            throw error
        }
    }

    /// The size of the terminal `fd` is open on (a master or a slave).
    package static func windowSize(of fd: Int32) throws(SystemError) -> WindowSize {
        var size = winsize()
        guard ioctl(fd, UInt(TIOCGWINSZ), &size) == 0 else { throw SystemError("ioctl TIOCGWINSZ", "fd \(fd)") }
        return WindowSize(rows: size.ws_row, columns: size.ws_col)
    }

    /// Sets the size of the terminal `fd` is open on; the kernel sends SIGWINCH to the terminal's foreground
    /// process group when the size changes.
    package static func setWindowSize(_ windowSize: WindowSize, of fd: Int32) throws(SystemError) {
        var size = winsize(ws_row: windowSize.rows, ws_col: windowSize.columns, ws_xpixel: 0, ws_ypixel: 0)
        guard ioctl(fd, UInt(TIOCSWINSZ), &size) == 0 else { throw SystemError("ioctl TIOCSWINSZ", "fd \(fd)") }
    }

    #if canImport(Glibc)
    // posix_openpt, grantpt, unlockpt and ptsname_r are X/Open and GNU declarations that Glibc does not
    // export to Swift: what they do on Linux, with the ioctl numbers of <asm-generic/ioctls.h>.
    private static let getPTYNumber = UInt(0x8004_5430)  // TIOCGPTN
    private static let setPTYLock = UInt(0x4004_5431)  // TIOCSPTLCK

    private static func openMaster() -> Int32 {
        Glibc.open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC)
    }

    /// Unlocks the slave (unlockpt; grantpt has nothing to do where devpts sets the owner and mode).
    private static func unlock(_ fd: Int32) throws(SystemError) {
        var locked: Int32 = 0
        guard ioctl(fd, setPTYLock, &locked) == 0 else { throw SystemError("ioctl TIOCSPTLCK", "/dev/ptmx") }
    }

    /// The slave's path of master `fd`.
    private static func slaveName(_ fd: Int32) throws(SystemError) -> String {
        var number: UInt32 = 0
        guard ioctl(fd, getPTYNumber, &number) == 0 else { throw SystemError("ioctl TIOCGPTN", "/dev/ptmx") }
        return "/dev/pts/\(number)"
    }
    #else
    private static func openMaster() -> Int32 {
        posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC)
    }

    private static func unlock(_ fd: Int32) throws(SystemError) {
        guard grantpt(fd) == 0, unlockpt(fd) == 0 else { throw SystemError("unlockpt", "/dev/ptmx") }
    }

    private static func slaveName(_ fd: Int32) throws(SystemError) -> String {
        guard let name = ptsname(fd) else { throw SystemError("ptsname", "/dev/ptmx") }
        return String(cString: name)
    }
    #endif
}
