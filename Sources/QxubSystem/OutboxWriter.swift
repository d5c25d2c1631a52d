#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Bytes queued for a non-blocking descriptor, written whenever it has room (agent and client both
/// send their frames through one of these, so neither ever blocks its event loop on a slow peer).
package final class OutboxWriter {
    private let loop: EventLoop
    private let fd: Int32
    private var buffer: [UInt8] = []
    private var start = 0
    private var stopped = false
    /// Called when everything queued has been written.
    package var onDrained: () -> Void = {}
    /// Called once when a write fails (the peer is gone); the queue is dropped.
    package var onError: (SystemError) -> Void = { _ in }
    /// Called after a write leaves at most ``lowWaterMark`` bytes queued: a producer that stopped at a
    /// high-water mark (the agent stops reading requests) may go on.
    package var onLowWater: () -> Void = {}
    package var lowWaterMark = 0
    /// Bytes written so far.
    package private(set) var bytesWritten = 0

    package init(loop: EventLoop, fd: Int32) {
        self.loop = loop
        self.fd = fd
    }

    /// Bytes queued and not yet written.
    package var pendingBytes: Int { buffer.count - start }

    package func enqueue(_ bytes: [UInt8]) {
        guard !stopped else { return }
        let wasEmpty = pendingBytes == 0
        buffer.append(contentsOf: bytes)
        if wasEmpty { flush() }
    }

    /// Writes what the descriptor takes now; waits for room for the rest.
    package func flush() {
        while pendingBytes > 0 && !stopped {
            let written: Int
            do {
                written = try buffer.withUnsafeBytes {
                    try FileDescriptor.writeSome(fd, UnsafeRawBufferPointer(rebasing: $0[start...]))
                }
            } catch let error as SystemError {
                stop()
                return onError(error)
            } catch {
                stop()
                return onError(SystemError("write", "fd \(fd)", errno: EIO))
            }
            if written == 0 { break }
            start += written
            bytesWritten += written
        }
        guard !stopped else { return }
        if pendingBytes <= lowWaterMark { onLowWater() }
        if pendingBytes == 0 {
            buffer.removeAll(keepingCapacity: buffer.capacity <= 1 << 20)
            start = 0
            loop.setWritable(fd, nil)
            onDrained()
        } else {
            if start > 1 << 20 {
                buffer.removeSubrange(0..<start)
                start = 0
            }
            loop.setWritable(fd) { [unowned self] in flush() }
        }
    }

    /// Drops what is queued and stops watching the descriptor.
    package func stop() {
        stopped = true
        buffer.removeAll()
        start = 0
        loop.setWritable(fd, nil)
    }
}
