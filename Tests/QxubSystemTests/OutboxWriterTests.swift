import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The writer behind every frame sent: bytes leave in order, a full pipe is waited on, producers hear when
/// the queue is low again, and a vanished reader is one error, not a crash.
@Suite("OutboxWriter: order, partial writes, backpressure, errors")
struct OutboxWriterTests {
    /// A pipe with a non-blocking write end for the writer and a read end the test drains on the loop.
    final class Pipe {
        let read: Int32
        let write: Int32
        private var readOpen = true
        init() throws {
            (read, write) = try FileDescriptor.pipe()
            try FileDescriptor.setNonBlocking(read)
            try FileDescriptor.setNonBlocking(write)
        }
        func closeReadEnd() {
            if readOpen { FileDescriptor.close(read) }
            readOpen = false
        }
        deinit {
            closeReadEnd()
            FileDescriptor.close(write)
        }
    }

    /// Reads everything `pipe` carries on `loop`, calling `onBytes` after each read.
    static func collect(_ pipe: Pipe, on loop: EventLoop, onBytes: @escaping ([UInt8]) -> Void) {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        loop.setReadable(pipe.read) {
            while case .bytes(let count)? = try? buffer.withUnsafeMutableBytes({
                try FileDescriptor.read(pipe.read, into: $0)
            }) {
                received += buffer[0..<count]
            }
            onBytes(received)
        }
    }

    static func pattern(_ count: Int, seed: Int = 0) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: ($0 &* 31) &+ seed) }
    }

    @Test("chunks enqueued one after another arrive whole and in order")
    func order() throws {
        let loop = EventLoop()
        let pipe = try Pipe()
        let writer = OutboxWriter(loop: loop, fd: pipe.write)
        let chunks = (0..<50).map { Self.pattern(1 + $0 * 997, seed: $0) }
        let expected = chunks.flatMap { $0 }
        var received: [UInt8] = []
        Self.collect(pipe, on: loop) { bytes in
            received = bytes
            if bytes.count >= expected.count { loop.stop() }
        }
        for chunk in chunks { writer.enqueue(chunk) }
        #expect(try !runLoop(loop), "the bytes never all arrived")
        #expect(received == expected)
        #expect(writer.bytesWritten == expected.count)
        #expect(writer.pendingBytes == 0)
    }

    @Test("more than the pipe holds is written in parts as the reader makes room, and drained once")
    func partialWrites() throws {
        let loop = EventLoop()
        let pipe = try Pipe()
        let writer = OutboxWriter(loop: loop, fd: pipe.write)
        let payload = Self.pattern(4 << 20)
        var drained = 0
        writer.onDrained = { drained += 1 }
        writer.enqueue(payload)
        // No reader yet: the pipe took what it holds and the rest waits, without blocking the caller.
        #expect(writer.bytesWritten > 0)
        #expect(writer.pendingBytes == payload.count - writer.bytesWritten)
        #expect(writer.pendingBytes > 0)
        #expect(drained == 0)
        var received: [UInt8] = []
        Self.collect(pipe, on: loop) { bytes in
            received = bytes
            if bytes.count >= payload.count { loop.stop() }
        }
        #expect(try !runLoop(loop), "the payload never all arrived")
        #expect(received == payload)
        #expect(drained == 1)
        #expect(writer.pendingBytes == 0)
    }

    @Test("the low-water call comes only once the queue is down to the mark")
    func lowWaterMark() throws {
        let loop = EventLoop()
        let pipe = try Pipe()
        let writer = OutboxWriter(loop: loop, fd: pipe.write)
        writer.lowWaterMark = 256 << 10
        var pendingAtLowWater: [Int] = []
        writer.onLowWater = { pendingAtLowWater.append(writer.pendingBytes) }
        let payload = Self.pattern(2 << 20)
        writer.enqueue(payload)
        #expect(pendingAtLowWater.isEmpty, "low water reported while \(writer.pendingBytes) bytes were queued")
        Self.collect(pipe, on: loop) { bytes in
            if bytes.count >= payload.count { loop.stop() }
        }
        #expect(try !runLoop(loop))
        #expect(!pendingAtLowWater.isEmpty)
        #expect(pendingAtLowWater.allSatisfy { $0 <= writer.lowWaterMark })
    }

    @Test("a reader that is gone makes one EPIPE error, drops the queue and ignores what comes after")
    func closedReader() throws {
        ignoreBrokenPipes()
        let loop = EventLoop()
        let pipe = try Pipe()
        let writer = OutboxWriter(loop: loop, fd: pipe.write)
        var errors: [SystemError] = []
        writer.onError = { errors.append($0) }
        pipe.closeReadEnd()
        writer.enqueue(Self.pattern(1000))
        writer.enqueue(Self.pattern(1000))
        #expect(errors.map(\.errno) == [EPIPE])
        #expect(errors.first?.operation == "write")
        #expect(writer.pendingBytes == 0)
        #expect(writer.bytesWritten == 0)
        #expect(!loop.isWatching(pipe.write))
    }
}
