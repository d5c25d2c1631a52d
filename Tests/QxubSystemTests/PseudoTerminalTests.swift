import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Pseudo-terminals in-process: a pair opens, window sizes pass from master to slave, raw mode is entered and
/// restored exactly, and a spawned child has the slave as its controlling terminal.
@Suite("PseudoTerminal and TerminalMode")
struct PseudoTerminalTests {
    /// Opens the slave side in this process (without making it our controlling terminal).
    static func openSlave(_ terminal: PseudoTerminal) throws -> Int32 {
        let fd = open(terminal.slavePath, O_RDWR | O_NOCTTY | O_CLOEXEC)
        return try #require(fd >= 0 ? fd : nil, "open \(terminal.slavePath): errno \(errno)")
    }

    /// Runs `sh -c script` with the terminal at `path` as its stdin; returns its stdout.
    static func shell(_ script: String, stdinFrom path: String) throws -> String {
        let child = try ChildProcess.spawn(
            ["/bin/sh", "-c", script + " < \"$1\"", "sh", path],
            stdin: .null,
            stdout: .pipe
        )
        let output = try FileDescriptor.readAll(try #require(child.stdout))
        FileDescriptor.close(try #require(child.stdout))
        #expect(child.wait() == .exited(0))
        return String(decoding: output, as: UTF8.self)
    }

    /// Reads the master until the last holder of the slave has gone (EIO) or end of file, within `bound`.
    static func readUntilClosed(_ master: Int32, bound: Double = 20) throws -> String {
        try FileDescriptor.setNonBlocking(master)
        let loop = EventLoop()
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        loop.setReadable(master) {
            let outcome = try? buffer.withUnsafeMutableBytes { try FileDescriptor.read(master, into: $0) }
            switch outcome {
            case .bytes(let count)?: output.append(contentsOf: buffer[0..<count])
            case .wouldBlock?: break
            case .endOfFile?, nil:
                loop.remove(master)
                loop.stop()
            }
        }
        #expect(try !runLoop(loop, bound: bound), "the slave was not closed within \(bound) s")
        return String(decoding: output, as: UTF8.self)
    }

    @Test("raw mode changes the terminal's settings and restore brings back exactly the saved ones")
    func rawModeAndRestore() throws {
        let terminal = try PseudoTerminal.open()
        defer { FileDescriptor.close(terminal.master) }
        let slave = try Self.openSlave(terminal)
        defer { FileDescriptor.close(slave) }
        let before = try Self.shell("stty -g", stdinFrom: terminal.slavePath)
        let mode = try TerminalMode.save(slave)
        try mode.enterRaw()
        let raw = try Self.shell("stty -g", stdinFrom: terminal.slavePath)
        #expect(raw != before)
        let rawSettings = try Self.shell("stty -a", stdinFrom: terminal.slavePath)
        #expect(rawSettings.contains("-echo "))
        #expect(rawSettings.contains("-icanon"))
        #expect(rawSettings.contains("-isig"))
        try mode.restore()
        #expect(try Self.shell("stty -g", stdinFrom: terminal.slavePath) == before)
    }

    @Test("saving the mode of something that is not a terminal fails with ENOTTY")
    func saveNeedsATerminal() throws {
        let ends = try FileDescriptor.pipe()
        defer {
            FileDescriptor.close(ends.read)
            FileDescriptor.close(ends.write)
        }
        #expect(throws: SystemError("tcgetattr", "fd \(ends.read)", errno: ENOTTY)) {
            try TerminalMode.save(ends.read)
        }
    }

    @Test("a window size set on the master is the slave's size")
    func windowSizeReachesTheSlave() throws {
        let terminal = try PseudoTerminal.open()
        defer { FileDescriptor.close(terminal.master) }
        let slave = try Self.openSlave(terminal)
        defer { FileDescriptor.close(slave) }
        try PseudoTerminal.setWindowSize(WindowSize(rows: 37, columns: 113), of: terminal.master)
        #expect(try PseudoTerminal.windowSize(of: slave) == WindowSize(rows: 37, columns: 113))
        #expect(try Self.shell("stty size", stdinFrom: terminal.slavePath) == "37 113\n")
    }

    @Test("a child spawned on the slave sees its size, names it as its tty and has it as its controlling terminal")
    func childOnTheSlave() throws {
        let terminal = try PseudoTerminal.open()
        defer { FileDescriptor.close(terminal.master) }
        try PseudoTerminal.setWindowSize(WindowSize(rows: 24, columns: 80), of: terminal.master)
        let child = try ChildProcess.spawn(
            ["/bin/sh", "-c", "stty size; tty; echo controlling > /dev/tty; ps -o tty= -p $$"],
            controllingTerminal: terminal.slavePath
        )
        let output = try Self.readUntilClosed(terminal.master)
        #expect(child.wait() == .exited(0))
        // The terminal turns each "\n" into "\r\n" (one Character in Swift).
        let lines = output.split(separator: "\r\n").map(String.init)
        let name = String(terminal.slavePath.dropFirst("/dev/".count))
        #expect(lines == ["24 80", terminal.slavePath, "controlling", name])
    }
}
