import QxubSystem

#if canImport(Glibc)
import Glibc
#endif

/// The agent's side of a terminal keeper's socket (``TerminalKeeper``): sends the user's keys and window
/// sizes, hears when new output is in the job's `out` file.
///
/// Everything runs on the agent's loop: writes are queued (``OutboxWriter``), never blocking it.
package final class KeeperConnection {
    /// New output was appended to `out` (the keeper's `N`): time to read the file.
    package var onOutput: () -> Void = {}
    /// The keeper closed the connection (it ended, or refused a bad frame) or it failed; called once, and
    /// not after ``close()``.
    package var onClose: () -> Void = {}

    private let loop: EventLoop
    private let fd: Int32
    private let outbox: OutboxWriter
    private var decoder = KeeperFrameDecoder()
    private var closed = false

    /// Connects to the keeper's socket (`JobPaths.keeperSocket`). A unix socket's connect does not wait for
    /// the keeper to accept (the kernel queues it), so this returns at once; the socket is then non-blocking.
    package static func connect(
        to socketPath: String,
        on loop: EventLoop
    ) -> Result<
        KeeperConnection, UnixSocket.ConnectFailure
    > {
        switch UnixSocket.connect(socketPath) {
        case .failure(let failure):
            return .failure(failure)
        case .success(let fd):
            do { try FileDescriptor.setNonBlocking(fd) } catch {
                FileDescriptor.close(fd)
                return .failure(.failed((error as? SystemError)?.errno ?? EIO))
            }
            return .success(KeeperConnection(fd: fd, loop: loop))
        }
    }

    private init(fd: Int32, loop: EventLoop) {
        self.fd = fd
        self.loop = loop
        self.outbox = OutboxWriter(loop: loop, fd: fd)
        outbox.onError = { [weak self] _ in self?.end() }
        loop.setReadable(fd) { [weak self] in self?.read() }
    }

    /// Bytes queued for the keeper and not yet written (the caller may stop reading the user's keys above
    /// some mark).
    package var pendingBytes: Int { outbox.pendingBytes }

    /// The user's keys, for the terminal.
    package func sendInput(_ bytes: [UInt8]) {
        guard !closed, !bytes.isEmpty else { return }
        outbox.enqueue(KeeperFrame.inputFrames(bytes))
    }

    /// The user's window size: the keeper sets it on the terminal, and the command gets SIGWINCH.
    package func resize(rows: UInt16, cols: UInt16) {
        guard !closed else { return }
        outbox.enqueue(KeeperFrame.resize(WindowSize(rows: rows, columns: cols)).encoded)
    }

    /// Closes the connection (the keeper starts its grace time when no agent is left); ``onClose`` is not
    /// called.
    package func close() {
        guard !closed else { return }
        closed = true
        outbox.stop()
        loop.remove(fd)
        FileDescriptor.close(fd)
    }

    private func read() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let outcome = try? buffer.withUnsafeMutableBytes { raw throws in try FileDescriptor.read(fd, into: raw) }
        switch outcome {
        case .bytes(let count)?: decoder.append(buffer[0..<count])
        case .wouldBlock?: return
        case .endOfFile?, nil: return end()
        }
        var output = false
        do {
            while let frame = try decoder.next() {
                // Only `N` comes this way; anything else means the stream is not a keeper's.
                guard frame == .output else { return end() }
                output = true
            }
        } catch {
            return end()
        }
        if output { onOutput() }
    }

    private func end() {
        guard !closed else { return }
        close()
        onClose()
    }
}
