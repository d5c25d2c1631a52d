import QxubClient
import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Job output to a reader that stops reading")
struct OutputWriterTests {
    /// A pipe: (read end, write end).
    static func pipe() throws -> (Int32, Int32) {
        var fds: [Int32] = [0, 0]
        try #require(Glibc.pipe(&fds) == 0)
        return (fds[0], fds[1])
    }

    @Test("a pipe nobody reads takes what fits; the rest waits without blocking, then arrives whole and in order")
    func stalledPipe() throws {
        let (readEnd, writeEnd) = try Self.pipe()
        let (errRead, errWrite) = try Self.pipe()
        defer { [readEnd, writeEnd, errRead, errWrite].forEach { FileDescriptor.close($0) } }
        let loop = EventLoop()
        let writer = OutputWriter(loop: loop, stdout: writeEnd, stderr: errWrite)
        var reports: [Int] = []
        writer.onBacklog = { reports.append($0) }
        let payload = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        // Nobody reads yet: a blocking write would hang here.
        writer.write(.stdout, Array(payload[..<(1 << 19)]))
        writer.write(.stdout, Array(payload[(1 << 19)...]))
        #expect(writer.backlog > 0 && writer.backlog < payload.count)
        #expect(reports.last == writer.backlog)
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        loop.setReadable(readEnd) {
            let count = buffer.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
            if count > 0 { received += buffer[..<count] }
            if received.count == payload.count { loop.stop() }
        }
        let guardTimer = loop.schedule(after: 10) { loop.stop() }
        try loop.run()
        loop.cancelTimer(guardTimer)
        writer.close()
        #expect(received == payload)
        #expect(writer.backlog == 0)
        #expect(reports.last == 0)
    }

    @Test("a reader that leaves (EPIPE) is reported once, and what waited for it is dropped")
    func readerLeaves() throws {
        ignoreBrokenPipes()
        let (readEnd, writeEnd) = try Self.pipe()
        let (errRead, errWrite) = try Self.pipe()
        defer { [writeEnd, errRead, errWrite].forEach { FileDescriptor.close($0) } }
        let loop = EventLoop()
        let writer = OutputWriter(loop: loop, stdout: writeEnd, stderr: errWrite)
        var closed: [OutputSink.Target] = []
        writer.onClosed = { closed.append($0) }
        writer.write(.stdout, [UInt8](repeating: 0x41, count: 1 << 20))
        #expect(writer.backlog > 0)
        FileDescriptor.close(readEnd)
        writer.onBacklog = { if $0 == 0 { loop.stop() } }
        let guardTimer = loop.schedule(after: 10) { loop.stop() }
        try loop.run()
        loop.cancelTimer(guardTimer)
        #expect(closed == [.stdout])
        #expect(writer.backlog == 0)
        writer.write(.stdout, [0x42])
        #expect(writer.backlog == 0)
        #expect(closed == [.stdout])
        writer.close()
    }
}
