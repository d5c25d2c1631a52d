import QxubSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The poll loop's promises: a stop is never lost, and a descriptor that hung up never makes it spin.
@Suite("EventLoop: stops and hang-ups")
struct EventLoopTests {
    /// A pipe whose ends are closed when the test is done.
    final class Pipe {
        let read: Int32
        var write: Int32?
        init() throws {
            let ends = try FileDescriptor.pipe()
            read = ends.read
            write = ends.write
        }
        func closeWriteEnd() {
            if let write { FileDescriptor.close(write) }
            write = nil
        }
        deinit {
            FileDescriptor.close(read)
            closeWriteEnd()
        }
    }

    @Test("a stop requested before run() makes it return at once")
    func stopBeforeRun() throws {
        let loop = EventLoop()
        let quiet = try Pipe()  // never readable: without the stop, run() would wait on it
        loop.setReadable(quiet.read) {}
        var boundReached = false
        loop.schedule(after: 5) {
            boundReached = true
            loop.stop()
        }
        loop.stop()
        try loop.run()
        #expect(!boundReached, "run() ignored the stop requested before it started")
    }

    @Test("a stop ends the run it was requested in, and no later one")
    func stopIsConsumed() throws {
        let loop = EventLoop()
        let quiet = try Pipe()
        loop.setReadable(quiet.read) {}
        var first = false
        loop.schedule(after: 0) {
            first = true
            loop.stop()
        }
        try loop.run()
        #expect(first)
        var second = false
        loop.schedule(after: 0.01) {
            second = true
            loop.stop()
        }
        try loop.run()
        #expect(second, "the first run's stop ended the second run too")
    }

    @Test("a reader that ignores a hang-up hears of it once instead of spinning")
    func hangUpIsReportedOnce() throws {
        let loop = EventLoop()
        let pipe = try Pipe()
        pipe.closeWriteEnd()
        var calls = 0
        loop.setReadable(pipe.read) {
            calls += 1
            if calls > 100 { loop.stop() }  // a spinning loop: end the test instead of hanging it
        }
        try loop.run()
        #expect(calls == 1)
    }

    @Test("a descriptor given a new handler by the one that heard its hang-up stays watched")
    func newHandlerAfterHangUp() throws {
        let loop = EventLoop()
        let pipe = try Pipe()
        pipe.closeWriteEnd()
        var heardAgain = false
        loop.setReadable(pipe.read) {
            // A new handler for the same descriptor number, as a reconnect registers for a reused one.
            loop.setReadable(pipe.read) {
                heardAgain = true
                loop.remove(pipe.read)
            }
        }
        try loop.run()
        #expect(heardAgain)
    }
}
