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

/// The checks every lane's interactive shell makes (local, through sshd, on the real Slurm and OpenPBS), from
/// a shell that is ready for input: the window's size and a resize, Ctrl-C to the job's foreground program
/// (not to qxub), and `exit 3` as qxub's exit status with the terminal's mode restored as it was (`before`).
struct InteractiveShellScenario {
    /// The size the job's terminal starts with, as `stty size` prints it.
    var size = "24 80"
    /// A new window size the job's terminal must follow; nil where the scheduler sends the size only once
    /// (OpenPBS's `qsub -I`).
    var resize: (rows: UInt16, columns: UInt16)? = nil
    /// The shell's prompt after Ctrl-C, where the test knows it (the PBS user's own login shell has its own).
    var prompt: String? = "qxi$ "
    var exitTimeout: Double = 60

    func run(_ session: TerminalHarness, modeBefore before: String) throws {
        try session.type("stty size\r")
        #expect(session.waitFor(size), "the job's terminal does not have the window's size: \(session.text)")
        if let resize {
            try session.resize(rows: resize.rows, columns: resize.columns)
            try session.type("stty size\r")
            #expect(
                session.waitFor("\(resize.rows) \(resize.columns)"),
                "the job's terminal did not get the new size: \(session.text)"
            )
        }
        // Ctrl-C ends the job's foreground program, not qxub (nor the job).
        try session.type("echo sleeping; sleep 30\r")
        #expect(session.waitFor("sleeping\r\n"), "\(session.text)")
        try session.type("\u{03}")
        if let prompt { #expect(session.waitFor(prompt), "\(session.text)") }
        try session.type("echo status=$?\r")
        #expect(session.waitFor("status=130"), "Ctrl-C did not end the job's foreground program: \(session.text)")
        #expect(session.child.poll() == nil, "Ctrl-C ended qxub: \(session.text)")
        try session.type("exit 3\r")
        #expect(session.waitForExit(timeout: exitTimeout) == .exited(3), "\(session.text)")
        #expect(try session.mode() == before, "the terminal's mode was not restored")
    }
}
