import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A program run on a pseudo-terminal of the test's own, as a user's terminal runs it: keys typed, the
/// screen read, the window resized, the terminal's mode read back (`stty -g`). `script` cannot resize and
/// `expect` is not installed, so the tests drive qxub this way.
final class TerminalHarness {
    let terminal: PseudoTerminal
    let child: ChildProcess
    /// Everything the program wrote to the terminal so far.
    private(set) var screen: [UInt8] = []
    /// Read up to here by ``waitFor(_:timeout:)`` (each wait looks past the last match).
    private var consumed = 0

    /// Starts `arguments` with the slave as its controlling terminal, stdin, stdout and stderr, in a new
    /// session, `rows` x `columns`.
    init(_ arguments: [String], environment: [String], rows: UInt16 = 24, columns: UInt16 = 80) throws {
        terminal = try PseudoTerminal.open()
        try PseudoTerminal.setWindowSize(WindowSize(rows: rows, columns: columns), of: terminal.master)
        child = try ChildProcess.spawn(arguments, environment: environment, controllingTerminal: terminal.slavePath)
    }

    deinit {
        if child.poll() == nil {
            kill(-child.pid, SIGKILL)
            _ = child.wait()
        }
        FileDescriptor.close(terminal.master)
    }

    var text: String { String(decoding: screen, as: UTF8.self) }

    /// Types `text` (a "\r" is Enter, "\u{03}" Ctrl-C).
    func type(_ text: String) throws {
        try FileDescriptor.writeAll(terminal.master, text)
    }

    func resize(rows: UInt16, columns: UInt16) throws {
        try PseudoTerminal.setWindowSize(WindowSize(rows: rows, columns: columns), of: terminal.master)
    }

    /// Reads the screen until it shows `text` past what earlier waits matched, within `timeout` seconds;
    /// returns whether it did.
    @discardableResult
    func waitFor(_ text: String, timeout: Double = 30) -> Bool {
        let deadline = MonotonicClock.now() + timeout
        let needle = Array(text.utf8)
        while true {
            if let range = find(needle, from: consumed) {
                consumed = range
                return true
            }
            guard MonotonicClock.now() < deadline else { return false }
            pump(for: min(0.2, deadline - MonotonicClock.now()))
        }
    }

    /// Reads what the terminal has for up to `seconds`.
    func pump(for seconds: Double) {
        var poller = pollfd(fd: terminal.master, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, Int32(max(1, seconds * 1000))) > 0 else { return }
        var buffer = [UInt8](repeating: 0, count: 65536)
        let count = buffer.withUnsafeMutableBytes { read(terminal.master, $0.baseAddress, $0.count) }
        if count > 0 { screen += buffer[0..<count] }
    }

    /// Waits for the program's exit within `timeout`, reading the screen meanwhile.
    func waitForExit(timeout: Double = 60) -> ProcessExit? {
        let deadline = MonotonicClock.now() + timeout
        while MonotonicClock.now() < deadline {
            if let exit = child.poll() {
                pump(for: 0.05)
                return exit
            }
            pump(for: 0.05)
        }
        return nil
    }

    /// The terminal's mode as `stty -g` prints it (run on the slave, as the user's shell would).
    func mode() throws -> String {
        let run = try runCollectingOutput(["sh", "-c", "stty -g < \(terminal.slavePath)"], timeout: 10)
        return run.stdoutText.trimmingWhitespaceForTests()
    }

    private func find(_ needle: [UInt8], from start: Int) -> Int? {
        guard !needle.isEmpty, screen.count >= needle.count else { return nil }
        var index = start
        while index + needle.count <= screen.count {
            if screen[index] == needle[0] && Array(screen[index..<index + needle.count]) == needle {
                return index + needle.count
            }
            index += 1
        }
        return nil
    }
}
