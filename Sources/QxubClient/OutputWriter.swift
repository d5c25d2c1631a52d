import QxubSystem

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Job output on its way to our stdout and stderr, written without ever blocking the event loop.
///
/// A reader that stops reading (a pager the user paused, `| head` before it exits) must not stall the
/// session: heartbeats, Ctrl-C and the agent's other jobs go on. Chunks are written in the order they came,
/// as much as each descriptor takes; the rest waits for room. ``onBacklog`` reports the bytes waiting, so the
/// session can pause the jobs' watches above its bound (see ``JobSessionStateMachine/outputBacklog(_:)``).
///
/// Only a pipe is written non-blocking, through a file description of its own (`/proc/self/fd/N` opened
/// anew), so the flag never reaches the shell or the other processes that share our stdout; a terminal or a
/// file is written as before, blocking (a file always has room; a terminal shares its description with
/// stderr and with ssh's own messages, which must not meet EAGAIN).
package final class OutputWriter {
    private struct Stream {
        let fd: Int32
        /// We opened `fd` (a pipe's own description) and close it at the end.
        let owned: Bool
        var closed = false
    }

    private let loop: EventLoop
    private var streams: [OutputSink.Target: Stream] = [:]
    private var queue: [(target: OutputSink.Target, bytes: [UInt8], start: Int)] = []
    private var queued = 0
    private var waitingOn: Int32?
    /// Bytes waiting, after every change.
    package var onBacklog: (Int) -> Void = { _ in }
    /// The reader of a stream went away (EPIPE); what was queued for it is dropped.
    package var onClosed: (OutputSink.Target) -> Void = { _ in }

    /// - Parameters: stdout, stderr: the descriptors to write (tests pass pipes of their own).
    package init(loop: EventLoop, stdout: Int32 = 1, stderr: Int32 = 2) {
        self.loop = loop
        streams[.stdout] = Self.open(stdout)
        streams[.stderr] = Self.open(stderr)
    }

    /// Bytes queued and not yet written.
    package var backlog: Int { queued }

    package func write(_ target: OutputSink.Target, _ bytes: [UInt8]) {
        guard !bytes.isEmpty, streams[target]?.closed == false else { return }
        queue.append((target, bytes, 0))
        queued += bytes.count
        if queue.count == 1 { flush() } else { onBacklog(queued) }
    }

    /// Stops writing: what is queued is dropped, our own descriptors closed.
    package func close() {
        if let waitingOn { loop.setWritable(waitingOn, nil) }
        waitingOn = nil
        queue.removeAll()
        queued = 0
        for (target, stream) in streams where stream.owned && !stream.closed {
            FileDescriptor.close(stream.fd)
            streams[target]?.closed = true
        }
    }

    private func flush() {
        if let waitingOn { loop.setWritable(waitingOn, nil) }
        waitingOn = nil
        while let head = queue.first, let stream = streams[head.target] {
            let written: Int
            do {
                written = try head.bytes.withUnsafeBytes {
                    try FileDescriptor.writeSome(stream.fd, UnsafeRawBufferPointer(rebasing: $0[head.start...]))
                }
            } catch let error as SystemError where error.errno == EPIPE {
                drop(head.target)
                onClosed(head.target)
                continue
            } catch {
                // A failing stderr (or a full disk behind stdout) must not stop the jobs being followed.
                queued -= head.bytes.count - head.start
                queue.removeFirst()
                continue
            }
            queued -= written
            if head.start + written == head.bytes.count {
                queue.removeFirst()
            } else {
                queue[0].start += written
                if written == 0 {
                    waitingOn = stream.fd
                    loop.setWritable(stream.fd) { [unowned self] in flush() }
                    break
                }
            }
        }
        onBacklog(queued)
    }

    /// The reader of `target` is gone: nothing more goes there.
    private func drop(_ target: OutputSink.Target) {
        streams[target]?.closed = true
        queued -= queue.filter { $0.target == target }.reduce(0) { $0 + $1.bytes.count - $1.start }
        queue.removeAll { $0.target == target }
    }

    /// A pipe gets a description of its own, non-blocking; anything else is written as it is.
    private static func open(_ fd: Int32) -> Stream {
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFIFO else { return Stream(fd: fd, owned: false) }
        #if os(Linux)
        let own = Glibc.open("/proc/self/fd/\(fd)", O_WRONLY | O_NONBLOCK | O_CLOEXEC)
        if own >= 0 { return Stream(fd: own, owned: true) }
        #endif
        return Stream(fd: fd, owned: false)
    }
}
