import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// Our own terminal while an interactive job has it: raw mode (and back exactly as it was), the keys read
/// from it, its size. The policy (when it is taken, where keys go) is ``JobSessionStateMachine``'s.
package final class JobTerminal {
    private let input: Int32
    private let output: Int32
    private var mode: TerminalMode?
    private weak var loop: EventLoop?

    /// Nil when `input` is not a terminal (an interactive job then cannot have it).
    package init?(input: Int32, output: Int32) {
        guard isatty(input) == 1 else { return nil }
        self.input = input
        self.output = output
    }

    /// The window's size (of the output terminal, else the input's), nil if neither says.
    package func size() -> (rows: UInt16, columns: UInt16)? {
        for fd in [output, input] {
            if let size = try? PseudoTerminal.windowSize(of: fd), size.rows > 0, size.columns > 0 {
                return (size.rows, size.columns)
            }
        }
        return nil
    }

    /// Raw mode, and every key read from now on goes to `onInput`.
    ///
    /// Output processing is off too (as `ssh -t` does): the job's own terminal has done it, and a full-screen
    /// program there that turned it off (vim) sends a bare "\n" to move down a line. qxub's own lines in the
    /// middle of a session end in "\r\n" (``TerminalStatus``).
    package func take(on loop: EventLoop, onInput: @escaping ([UInt8]) -> Void) {
        guard mode == nil, let saved = try? TerminalMode.save(input) else { return }
        do {
            try saved.enterRaw()
        } catch {
            // Without raw mode no key would reach the job: say so rather than sit there.
            try? FileDescriptor.writeAll(
                2,
                "qxub: warning: cannot put this terminal in raw mode (\(error)); keys are not sent to the job: "
                    + "`qxub attach ID` from another terminal takes it\n"
            )
            return
        }
        mode = saved
        self.loop = loop
        let input = input
        loop.setReadable(input) { [weak self] in
            var buffer = [UInt8](repeating: 0, count: 4096)
            // Readable: a raw terminal's read returns what is there, without blocking.
            let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if count > 0 {
                onInput(Array(buffer[..<count]))
            } else if count == 0 || (currentErrno() != EINTR && currentErrno() != EAGAIN) {
                // The terminal is gone (hung up): nothing more to read.
                self?.loop?.remove(input)
            }
        }
    }

    /// The terminal as it was before ``take(on:onInput:)`` (idempotent).
    package func release() {
        guard let mode else { return }
        self.mode = nil
        loop?.remove(input)
        do { try mode.restore() } catch { ClientLog.write("terminal: cannot restore its mode: \(error)") }
    }
}
