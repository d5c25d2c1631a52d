#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A terminal's attributes as they were when saved, so raw mode can be entered and the exact mode restored.
///
/// The interactive client puts its own terminal in raw mode (every key, Ctrl-C included, goes to the far
/// side as a byte) and must give it back exactly as it found it, however it ends.
package struct TerminalMode: Sendable {
    /// The terminal's descriptor.
    package let fd: Int32
    private let saved: termios

    /// Saves the attributes of the terminal `fd` is open on; throws (ENOTTY) when it is not a terminal.
    package static func save(_ fd: Int32) throws(SystemError) -> TerminalMode {
        var attributes = termios()
        guard tcgetattr(fd, &attributes) == 0 else { throw SystemError("tcgetattr", "fd \(fd)") }
        return TerminalMode(fd: fd, saved: attributes)
    }

    /// Puts the terminal in raw mode (what `cfmakeraw` makes of the saved attributes): no echo, no line
    /// editing, no signals from keys, no output processing, 8-bit characters, reads return each byte.
    package func enterRaw() throws(SystemError) {
        var raw = saved
        cfmakeraw(&raw)
        try apply(raw)
    }

    /// Gives the terminal back the saved attributes, after the output already written has been sent.
    package func restore() throws(SystemError) {
        try apply(saved)
    }

    private func apply(_ attributes: termios) throws(SystemError) {
        var attributes = attributes
        while tcsetattr(fd, TCSADRAIN, &attributes) != 0 {
            guard currentErrno() == EINTR else { throw SystemError("tcsetattr", "fd \(fd)") }
        }
    }
}
